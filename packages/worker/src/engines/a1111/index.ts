export { A1111Engine, createA1111Engine, type A1111EngineDeps } from './engine.ts';
export { A1111EngineConfig, A1111_DEFAULT_URL, A1111_SECRET_KEYS, type A1111EngineConfigInput } from './config.ts';
export { buildA1111Body, a1111SamplerName, resolveCheckpoint, resolveSteps, type A1111GenerationBody } from './payload.ts';
export { describeA1111Error, readProgress, type A1111Progress } from './client.ts';
export { progressUpdate } from './progress-watch.ts';
export { encodeImageAs } from './image-io.ts';
export { fetchImageBytes, sniffImageFormat, type ImageFormat } from '../shared/input-images.ts';
