/** Registration as the daemon reports it (original-spec §3.1 serde shape). */
export type RegistrationState =
  | { state: 'pristine' }
  | { state: 'pending'; requestId: string; since?: string }
  | { state: 'approved' }
  | { state: 'rejected'; reason: string };

export const RESET_HINT = 'studio-worker register --reset';

/** One line for `studio-worker status`; `resetCommand`: the reset as it is typed here (with its --config). */
export function describeRegistration(state: RegistrationState, workerId?: string, resetCommand: string = RESET_HINT): string {
  switch (state.state) {
    case 'approved':
      return workerId ? `approved as ${workerId}` : 'approved';
    case 'pending':
      return `pending operator approval (request ${state.requestId}${state.since ? `, since ${state.since}` : ''})`;
    case 'rejected':
      return `rejected: ${state.reason || '(no reason given)'} — run \`${resetCommand}\` and restart the daemon to ask again`;
    case 'pristine':
      return 'not registered (the daemon sends a registration request when it starts)';
  }
}
