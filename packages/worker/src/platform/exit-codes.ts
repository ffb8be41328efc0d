/** Process exit codes of the `studio-worker` CLI. */
export const EXIT_OK = 0;
/** Something went wrong; the message says what to do. */
export const EXIT_ERROR = 1;
/** Bad command line. */
export const EXIT_USAGE = 2;
/** Another daemon holds the lock for this config dir. */
export const EXIT_LOCKED = 3;
/** A command that needs the running daemon (pause, resume) found none for this config dir. */
export const EXIT_NO_DAEMON = 4;
/**
 * The studio closed the session with 4003: a newer process took over this worker id. Services and
 * PM2 list this code as "do not restart" (a restart would only displace the newer one in turn).
 */
export const EXIT_DISPLACED = 5;
