export { SdCppEngine, createSdCppEngine, type SdCppEngineDeps } from './engine.ts';
export { SdCppEngineConfig, SD_CPP_ALLOWED_VALUES, type SdCppEngineConfigInput, type CommandSpec } from './config.ts';
export {
  buildSdCliArgs,
  buildSdServerArgs,
  buildSdApiRequest,
  resolveGenerationValues,
  modelFileArgs,
  DEFAULT_STRENGTH,
  type GenerationValues,
  type InputImages,
  type ModelOptions,
  type SdApiRequest,
} from './args.ts';
export { parseOutputLine, OutputSplitter, ProgressTracker, type OutputEvent, type TrackedUpdate } from './progress.ts';
export { sniffImageFormat, extensionFor, type ImageFormat } from '../shared/input-images.ts';
export { fetchInputImage, type InputImage } from './input-images.ts';
export { lookupProgram, PROGRAM_ENV, type ResolvedProgram, type ProgramLookup, type ProgramName } from './binary.ts';
export { installRelease, installedRelease, RELEASE_MARKER, ReleaseError, type ReleaseSpec, type InstalledRelease } from './release.ts';
export { readArchive, readZip, readTar, flattenName, ArchiveError, type ArchiveEntry } from './archive.ts';
export { VulkanBuildDetector, findVulkanLoader, defaultLibraryDirs, VULKAN_LOADER } from './vulkan.ts';
export { Watchdog, type WatchdogLimits, type WatchdogFire, type WatchdogName } from './watchdog.ts';
