export { ModelProvisioner, type EnsureContext, type ModelDirListing, type ModelProvisionerOptions } from './provisioner.ts';
export { sanitiseModelId, modelDirName, plainFileNameProblem, modelDirFor } from './paths.ts';
export { ModelFileFailure, type ProvisionFailureKind } from './failures.ts';
export { formatBytes, formatByteRatio, formatDuration, formatRate, renderProgressBar } from './format.ts';
export { ModelCatalog, CatalogModel } from './catalog.ts';
export { ReadyModels } from './ready.ts';
