/** The download URL rules live with the worker's one URL policy (../net/url-policy.ts). */
export { checkDownloadUrl, displayUrl } from '../platform/url-policy.ts';
