export { SyntheticEngine, createSyntheticEngine } from './engine.ts';
export { renderSyntheticImage, syntheticPattern, syntheticPixels, type SyntheticImage, type SyntheticImageExt } from './image.ts';
export { renderSyntheticVideo, syntheticVideoFrameCount, type SyntheticVideo } from './video.ts';
export { renderSyntheticWav, syntheticToneHz, TTS_SAMPLE_RATE, TTS_SAMPLES } from './audio.ts';
export { syntheticChatCompletion, syntheticChatPrompt, syntheticTranscript } from './text.ts';
export { labelPlacement, stampLabel, LABEL_TEXT, type LabelPlacement } from './pixel-font.ts';
export { requestedDelayMs } from './pacing.ts';
