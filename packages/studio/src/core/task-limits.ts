import type { Task } from '@studio-worker/protocol';

/**
 * The studio's caps on the text a job carries (README "HTTP API"): far above any real prompt (image
 * models read a few hundred tokens; an LLM context of ~32k tokens is ~100k characters), low enough
 * that one job cannot carry megabytes of text to every worker it is offered to.
 */
export const TASK_TEXT_LIMITS = {
  /** `prompt` and `negativePrompt` of image and video jobs, `prompt` of speech-to-text, `text` of speech. */
  promptChars: 10_000,
  /** All `messages[].content` plus `system` of an LLM job together. */
  messageChars: 100_000,
} as const;

/** What is too long in a task, in words that say what to shorten; undefined when it fits. */
export function taskTextProblem(task: Task): string | undefined {
  const single = (field: string, text: string | undefined) =>
    text !== undefined && text.length > TASK_TEXT_LIMITS.promptChars
      ? `task.${field} is ${text.length} characters long; the studio takes at most ${TASK_TEXT_LIMITS.promptChars}: shorten it`
      : undefined;
  switch (task.kind) {
    case 'image':
    case 'video':
      return single('prompt', task.prompt) ?? single('negativePrompt', task.negativePrompt);
    case 'audio_tts':
      return single('text', task.text);
    case 'audio_stt':
      return single('prompt', task.prompt);
    case 'llm': {
      const total = task.messages.reduce((sum, message) => sum + message.content.length, task.system?.length ?? 0);
      return total > TASK_TEXT_LIMITS.messageChars
        ? `task.messages hold ${total} characters; the studio takes at most ${TASK_TEXT_LIMITS.messageChars} (messages and system together): send less context`
        : undefined;
    }
  }
}
