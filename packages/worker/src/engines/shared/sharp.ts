import type Sharp from 'sharp';

let loading: Promise<typeof Sharp> | undefined;

/**
 * sharp, loaded on first use. Importing it loads libvips (about 20 MB resident), which an idle
 * daemon never needs: only the first image a job encodes, decodes or thumbnails pays for it.
 */
export function loadSharp(): Promise<typeof Sharp> {
  loading ??= import('sharp').then((module) => module.default);
  return loading;
}
