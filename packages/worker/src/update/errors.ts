/**
 * Why a check or an update did not happen. Every one leaves the running version as it is; the
 * updater tries again at the next interval.
 */
export type UpdateErrorCode =
  /** The feed URL (or an archive URL in it) is not https, nor http to a loopback host. */
  | 'insecure_url'
  /** The feed or archive host could not be reached, or did not answer in time. */
  | 'unreachable'
  /** The feed or archive host answered with a non-2xx status. */
  | 'http_status'
  /** The feed answered, but not with a shape this worker understands. */
  | 'feed_invalid'
  /** The release has no checksum the updater trusts (sha512/sha384/sha256). */
  | 'no_integrity'
  /** The archive's digest differs from the one the feed promised. */
  | 'integrity_mismatch'
  /** The archive is larger than allowed, or shorter/longer than its Content-Length. */
  | 'archive_size'
  /** The archive is not a gzip'd tar, or holds an entry that would land outside its folder. */
  | 'unsafe_archive'
  /** Installing the dependencies (npm) failed. */
  | 'install_failed'
  /** Another process is installing an update into the same data dir right now. */
  | 'install_busy'
  /** This kind of install cannot update itself (a git checkout). */
  | 'not_updatable'
  /** Reading or writing the data dir failed. */
  | 'local_io'
  /** No engine runtime by that name is installed on demand (`studio-worker engines add <name>`). */
  | 'unknown_runtime'
  /** The daemon is stopping. */
  | 'cancelled';

export class UpdateError extends Error {
  readonly code: UpdateErrorCode;
  constructor(code: UpdateErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UpdateError';
    this.code = code;
  }
}

export function errorText(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? error.cause.message : undefined;
    return cause && !error.message.includes(cause) ? `${error.message} (${cause})` : error.message;
  }
  return String(error);
}
