export { reconnectDelayMs, uploadRetryDelayMs } from './backoff.ts';
export { connectStudio, type ConnectResult } from './connection.ts';
export { LinkHolder, type StudioLink } from './link.ts';
export { createShippingDestination, logEntryFromLine } from './log-tee.ts';
export { StudioSession, type SessionEnd, type SessionHost } from './session.ts';
export { LogShipQueue, SHIP_QUEUE_CAPACITY } from './ship-queue.ts';
export { describeSession, type SessionState } from './state.ts';
export { superviseSessions, type SupervisorOptions, type SupervisorOutcome } from './supervisor.ts';
