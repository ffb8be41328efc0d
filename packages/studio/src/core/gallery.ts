import type { JobView } from '@studio-worker/protocol';
import type { FinishedFilter } from './finished-job-store.ts';
import type { Stores } from './stores.ts';
import { jobView } from './views.ts';

export interface GalleryFilter extends FinishedFilter {
  limit?: number;
}

/**
 * Finished jobs with their results, newest first, for the results gallery: filtered by model,
 * game, asset name and finishing date. Walks the jobs backwards by seq, so a page costs about as
 * many rows as it skips, not the size of the table.
 */
export class Gallery {
  private readonly stores: Stores;
  constructor(stores: Stores) {
    this.stores = stores;
  }

  page(filter: GalleryFilter): { jobs: JobView[]; nextBefore?: number } {
    const limit = Math.min(Math.max(filter.limit ?? 48, 1), 200);
    const rows = this.stores.finished.page(filter, limit);
    return { jobs: rows.map((r) => jobView(r)), nextBefore: rows.length === limit ? rows.at(-1)?.seq : undefined };
  }
}
