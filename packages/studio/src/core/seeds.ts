import type { ModelEntryInput } from '@studio-worker/protocol';

/** The synthetic engine's numbers: a 512² canvas whatever is asked; steps and cfg are unused. */
const SYNTHETIC_DEFAULTS = { cfgScale: 1, steps: 20, width: 512, height: 512 };

/**
 * Models every new studio starts with. Each carries the four cliDefaults numbers an original worker
 * requires (a test offers every seed to a strict original peer). Seeds are added once (a deleted or edited seed is not
 * brought back). The synthetic models run on the deterministic engine every worker has, and their
 * output is clearly labelled as synthetic.
 */
export const SEED_MODELS: readonly ModelEntryInput[] = [
  {
    id: 'synthetic-image',
    kind: 'image',
    displayName: 'Synthetic image (test pattern)',
    description: 'Deterministic placeholder images labelled SYNTHETIC; for trying the pipeline, not for real assets.',
    source: { engine: 'synthetic', cliDefaults: SYNTHETIC_DEFAULTS },
  },
  {
    id: 'synthetic-llm',
    kind: 'llm',
    displayName: 'Synthetic LLM',
    description: 'Deterministic chat.completion replies; for trying the pipeline.',
    source: { engine: 'synthetic', cliDefaults: SYNTHETIC_DEFAULTS },
  },
  {
    id: 'synthetic-stt',
    kind: 'audio_stt',
    displayName: 'Synthetic speech-to-text',
    description: 'Deterministic transcripts (the audio is not fetched); for trying the pipeline.',
    source: { engine: 'synthetic', cliDefaults: SYNTHETIC_DEFAULTS },
  },
  {
    id: 'synthetic-tts',
    kind: 'audio_tts',
    displayName: 'Synthetic text-to-speech',
    description: 'A one-second sine tone per text; for trying the pipeline.',
    source: { engine: 'synthetic', cliDefaults: SYNTHETIC_DEFAULTS },
  },
  {
    id: 'synthetic-video',
    kind: 'video',
    displayName: 'Synthetic video',
    description: 'A single-frame WebP per prompt; for trying the pipeline.',
    source: { engine: 'synthetic', cliDefaults: SYNTHETIC_DEFAULTS },
  },
  // Real models: jobs for these run only on workers that have the engine (strict routing), and
  // wait in the queue until one is online. File hashes are not pinned here (the weights cannot be
  // fetched from where this was written); pin `sha256` and `approxBytes` in your registry.
  {
    // original-spec §4.4: the original's seeded Z-Image-Turbo, via stable-diffusion.cpp.
    id: 'z-image-turbo-q4_k_m.gguf',
    kind: 'image',
    displayName: 'Z-Image-Turbo (Q4_K, stable-diffusion.cpp)',
    description: 'Fast 8-step text-to-image; about 8 GB of VRAM. Needs a worker with sd-cli (docs/engines/sd-cpp.md).',
    vramGbEstimate: 8,
    source: {
      engine: 'sd-cpp',
      files: [
        { role: 'diffusion-model', url: 'https://huggingface.co/leejet/Z-Image-Turbo-GGUF/resolve/main/z_image_turbo-Q4_K.gguf', filename: 'z_image_turbo-Q4_K.gguf' },
        { role: 'text-encoder', url: 'https://huggingface.co/unsloth/Qwen3-4B-Instruct-2507-GGUF/resolve/main/Qwen3-4B-Instruct-2507-Q4_K_M.gguf', filename: 'Qwen3-4B-Instruct-2507-Q4_K_M.gguf' },
        { role: 'vae', url: 'https://huggingface.co/Comfy-Org/Lumina_Image_2.0_Repackaged/resolve/main/split_files/vae/ae.safetensors', filename: 'ae.safetensors' },
      ],
      cliDefaults: { cfgScale: 1.0, steps: 8, width: 1024, height: 1024, samplingMethod: 'euler' },
    },
  },
  {
    // SDXL-Turbo through ComfyUI: the checkpoint lives in ComfyUI's own models/checkpoints folder.
    id: 'sdxl-turbo-comfyui',
    kind: 'image',
    displayName: 'SDXL-Turbo (ComfyUI)',
    description: 'One-step 512² text-to-image on a ComfyUI server with sd_xl_turbo_1.0_fp16.safetensors installed (docs/engines/comfyui.md).',
    vramGbEstimate: 8,
    source: {
      engine: 'comfyui',
      cliDefaults: {
        steps: 1,
        cfgScale: 1.0,
        width: 512,
        height: 512,
        samplingMethod: 'euler_ancestral',
        workflow: {
          '1': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'sd_xl_turbo_1.0_fp16.safetensors' } },
          '2': { class_type: 'CLIPTextEncode', inputs: { text: '{{prompt}}', clip: ['1', 1] } },
          '3': { class_type: 'CLIPTextEncode', inputs: { text: '{{negative_prompt}}', clip: ['1', 1] } },
          '4': { class_type: 'EmptyLatentImage', inputs: { width: '{{width}}', height: '{{height}}', batch_size: 1 } },
          '5': {
            class_type: 'KSampler',
            inputs: {
              model: ['1', 0],
              positive: ['2', 0],
              negative: ['3', 0],
              latent_image: ['4', 0],
              seed: '{{seed}}',
              steps: '{{steps}}',
              cfg: '{{cfg}}',
              sampler_name: '{{sampler}}',
              scheduler: 'normal',
              denoise: 1.0,
            },
          },
          '6': { class_type: 'VAEDecode', inputs: { samples: ['5', 0], vae: ['1', 2] } },
          '7': { class_type: 'SaveImage', inputs: { images: ['6', 0], filename_prefix: 'studio-worker' } },
        },
      },
    },
  },
];
