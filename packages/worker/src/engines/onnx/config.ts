import { z } from 'zod';

const seconds = (fallback: number) => z.number().min(0).default(fallback);

/**
 * The `[engines.onnx]` table of config.toml (snake_case there, camelCase here). Every key has a
 * default, so an empty table runs CPU inference with onnxruntime-node from the worker's own
 * node_modules. Nothing here is a secret.
 */
export const OnnxEngineConfig = z.object({
  /** false keeps the engine off the roster even when the runtime loads. */
  enabled: z.boolean().default(true),
  /**
   * What the inference host imports: a package name or an absolute path to a build of
   * onnxruntime-node (its API: InferenceSession, Tensor, listSupportedBackends).
   */
  runtimeModule: z.string().min(1).default('onnxruntime-node'),
  /**
   * The operator's consent to install the default runtime on first use when it is missing: the
   * same pinned, verified install as `studio-worker engines add onnx` (~90 MB from the npm
   * registry), started by the engine's probe; `status` shows its progress until it is there.
   */
  installRuntime: z.boolean().default(false),
  /** Execution providers in order of preference, e.g. ["cuda", "cpu"]. */
  executionProviders: z.array(z.string().min(1)).min(1).default(['cpu']),
  /** Threads per inference; 0 lets ONNX Runtime choose (one per physical core). */
  intraOpThreads: z.number().int().min(0).default(0),
  /** Sessions kept loaded in the host (least recently used is released first). */
  maxCachedModels: z.number().int().min(1).default(2),
  /** Stop the host (and free its models' memory) after this long without a job; 0 = keep it. */
  idleUnloadSecs: seconds(600),
  /** A single inference that runs longer than this is killed as a retryable engine_error; 0 = no limit. */
  inferenceTimeoutSecs: seconds(600),
  /** How long the host may take to start and import the runtime. */
  startTimeoutSecs: z.number().min(1).default(30),
  /** Largest input image (initImageUrl / maskUrl) the engine downloads. */
  maxInputBytes: z.number().int().min(1).default(64 * 1024 * 1024),
  /** Download timeout for one input image. */
  fetchTimeoutSecs: z.number().min(1).default(60),
});
export type OnnxEngineConfig = z.output<typeof OnnxEngineConfig>;
export type OnnxEngineConfigInput = z.input<typeof OnnxEngineConfig>;
