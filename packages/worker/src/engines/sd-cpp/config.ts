import { z } from 'zod';

/**
 * A program to run: one path (`"/opt/sd/sd-cli"`) or a command with leading arguments
 * (`["/usr/bin/node", "/path/fake-sd-cli.mjs"]`, handy for wrappers and tests).
 */
const Command = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);
export type CommandSpec = z.infer<typeof Command>;

const seconds = (fallback: number) => z.number().positive().default(fallback);

/**
 * The `[engines.sd-cpp]` table of config.toml, camelCase here (the file spells the keys in
 * snake_case). Every key is optional.
 */
export const SdCppEngineConfig = z
  .object({
    /** sd-cli to run per job; else $STUDIO_WORKER_SD_CLI, <models_root>/bin/sd-cli, then PATH. */
    sdCli: Command.optional(),
    /** sd-server for resident mode; else $STUDIO_WORKER_SD_SERVER, <models_root>/bin/sd-server, then PATH. */
    sdServer: Command.optional(),
    /** "per-job": one sd-cli process per job. "resident": one sd-server per model, kept loaded. */
    mode: z.enum(['per-job', 'resident']).default('per-job'),
    /** A pinned sd.cpp release archive (.zip or .tar.gz) to install into <models_root>/bin/. */
    releaseUrl: z.string().url().optional(),
    /** Its sha256 (64 hex characters); required with release_url. */
    releaseSha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, '64 hex characters')
      .optional(),
    /** Check that a Vulkan build can find libvulkan.so.1 (Linux). */
    vulkanCheck: z.boolean().default(true),
    /** Where to look for libvulkan.so.1 instead of the usual library directories. */
    vulkanLibraryDirs: z.array(z.string().min(1)).optional(),
    /** No first progress (per job) or ready server within this many seconds → kill, retryable failure. */
    loadTimeoutSecs: seconds(120),
    /** No new sampling step for this long while generating → kill, retryable failure. */
    stepTimeoutSecs: seconds(60),
    /** No output at all for this long (decoding, or a resident server that went quiet) → kill, restart. */
    silenceTimeoutSecs: seconds(300),
    /** Pass --diffusion-fa (flash attention in the diffusion model), as the original always did. */
    diffusionFa: z.boolean().default(true),
    /**
     * Live previews (sd-cli): `--preview <method>` writes a picture of the latents every step, which
     * the engine sends on as the job's preview. "proj" is a cheap projection, "tae" needs --taesd,
     * "vae" decodes fully (slow); "none" turns it off. Left out when the build has no --preview.
     */
    preview: z.enum(['none', 'proj', 'tae', 'vae']).default('proj'),
    /** Extra arguments appended to every sd-cli / sd-server command line, e.g. ["--vae-tiling"]. */
    extraArgs: z.array(z.string()).default([]),
    /** Extra environment variables for sd-cli / sd-server (e.g. GGML_VK_VISIBLE_DEVICES). */
    env: z.record(z.string(), z.string()).default({}),
  })
  .refine((config) => (config.releaseUrl === undefined) === (config.releaseSha256 === undefined), {
    message: 'release_url and release_sha256 go together: give both or neither',
    path: ['releaseSha256'],
  });
export type SdCppEngineConfig = z.output<typeof SdCppEngineConfig>;
export type SdCppEngineConfigInput = z.input<typeof SdCppEngineConfig>;

/** The config keys as config.toml spells them, with what each one allows (for error messages). */
export const SD_CPP_ALLOWED_VALUES: Readonly<Record<string, string>> = {
  'engines.sd-cpp.sd_cli': 'a path to sd-cli, or a command as an array of strings',
  'engines.sd-cpp.sd_server': 'a path to sd-server, or a command as an array of strings',
  'engines.sd-cpp.mode': '"per-job" or "resident"',
  'engines.sd-cpp.release_url': 'an https URL of a .zip or .tar.gz sd.cpp release',
  'engines.sd-cpp.release_sha256': '64 hex characters (required with release_url)',
  'engines.sd-cpp.vulkan_check': 'true or false',
  'engines.sd-cpp.vulkan_library_dirs': 'an array of directories',
  'engines.sd-cpp.load_timeout_secs': 'a number of seconds > 0',
  'engines.sd-cpp.step_timeout_secs': 'a number of seconds > 0',
  'engines.sd-cpp.silence_timeout_secs': 'a number of seconds > 0',
  'engines.sd-cpp.diffusion_fa': 'true or false',
  'engines.sd-cpp.preview': '"none", "proj", "tae" or "vae"',
  'engines.sd-cpp.extra_args': 'an array of strings',
  'engines.sd-cpp.env': 'a table of environment variables (string values)',
};
