export { hashRegistrationSecret, newInstallId, newRegistrationSecret } from './credentials.ts';
export { Registrar, registrationPollDelayMs, type RegistrarOptions } from './registrar.ts';
export { describeRegistration, RESET_HINT, type RegistrationState } from './state.ts';
