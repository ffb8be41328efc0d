/** The header the Worker tells an object which pool a request was routed to by (for its logs). */
export const POOL_HEADER = 'x-studio-pool';
