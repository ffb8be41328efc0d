import { h, setChildren } from '/kit/dom.js';
import { isSynthetic, KIND_LABELS, kindLabel } from '../format.js';

const KIND_ORDER = Object.keys(KIND_LABELS);

/**
 * The "new job" form: a model picker (enabled models, grouped by kind) and the fields of the chosen
 * model's kind. `onSubmit(model, task)` answers a promise; the form shows its error message.
 */
export function submitSection({ onSubmit }) {
  const select = h('select', { id: 'submit-model', name: 'model', required: true });
  const note = h('p', { class: 'hint', id: 'submit-model-note' });
  const errorBox = h('p', { class: 'error', role: 'alert', id: 'submit-error' });
  errorBox.hidden = true;
  // After submitting a job for a model no online worker runs: where it waits, and why.
  const waitingBox = h('p', { class: 'hint warning-text', role: 'status', id: 'submit-waiting' });
  waitingBox.hidden = true;
  /** The operator picked a model themselves: refreshes keep it instead of picking the best one again. */
  let chosenByOperator = false;
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Submit job');
  const fieldsets = {
    image: visualFields('image'),
    video: visualFields('video'),
    llm: h('fieldset', { 'data-kind': 'llm' }, h('legend', { text: 'Chat message' }), field('llm-message', 'Message', h('textarea', { name: 'message', rows: 4, required: true }))),
    audio_tts: h('fieldset', { 'data-kind': 'audio_tts' }, h('legend', { text: 'Speech' }), field('tts-text', 'Text to speak', h('textarea', { name: 'text', rows: 4, required: true }))),
    audio_stt: h(
      'fieldset',
      { 'data-kind': 'audio_stt' },
      h('legend', { text: 'Transcription' }),
      field('stt-input', 'Audio URL', h('input', { name: 'inputUrl', type: 'url', required: true, placeholder: 'https://…/speech.wav' })),
    ),
  };
  let models = [];

  const form = h(
    'form',
    {
      async onSubmit(event) {
        event.preventDefault();
        const model = models.find((m) => m.id === select.value);
        if (!model) return;
        const task = taskFrom(model.kind, fieldsets[model.kind]);
        errorBox.hidden = true;
        waitingBox.hidden = true;
        submit.disabled = true;
        submit.textContent = 'Submitting…';
        try {
          const job = await onSubmit(model.id, task);
          const why = waitingReason(model);
          if (why && job) {
            waitingBox.textContent = `Job ${job.id} is queued in the studio and waits there: ${why}. It runs as soon as such a worker connects.`;
            waitingBox.hidden = false;
          }
        } catch (error) {
          errorBox.textContent = error.message;
          errorBox.hidden = false;
        } finally {
          submit.disabled = false;
          submit.textContent = 'Submit job';
        }
      },
    },
    h('div', { class: 'field' }, h('label', { for: 'submit-model', text: 'Model' }), select, note),
    Object.values(fieldsets),
    errorBox,
    waitingBox,
    h('div', { class: 'form-actions' }, submit),
  );

  function showKind() {
    const model = models.find((m) => m.id === select.value);
    for (const [kind, fieldset] of Object.entries(fieldsets)) {
      const active = model?.kind === kind;
      fieldset.hidden = !active;
      // A hidden fieldset's required fields must not block submitting another kind.
      fieldset.disabled = !active;
    }
    note.textContent = model
      ? [model.description ?? '', isSynthetic(model.id) ? 'Synthetic model: results are test output, not real generations.' : '', waitingNote(model)].filter(Boolean).join(' ')
      : '';
    note.classList.toggle('warning-text', Boolean(model && isSynthetic(model.id)));
    submit.disabled = !model;
  }
  select.addEventListener('change', () => {
    chosenByOperator = true;
    showKind();
  });

  const section = h('section', { class: 'panel', id: 'submit', 'aria-labelledby': 'submit-title' }, h('h2', { id: 'submit-title', text: 'New job' }), form);

  return {
    section,
    /**
     * Refresh the picker: models an online worker runs now, grouped by kind, then those none does in
     * a group of their own. Preselects one that runs now (a real model before a synthetic one) until
     * the operator picks one themselves; their choice is kept while it stays enabled.
     */
    setModels(all) {
      models = all.filter((m) => m.enabled);
      const previous = select.value;
      const ready = models.filter((m) => !waitingReason(m));
      const waiting = models.filter((m) => waitingReason(m));
      const groups = KIND_ORDER.map((kind) => [kind, ready.filter((m) => m.kind === kind)]).filter(([, list]) => list.length > 0);
      const label = (m) => (m.displayName ? `${m.displayName} (${m.id})` : m.id);
      setChildren(
        select,
        models.length === 0 ? h('option', { value: '', text: 'No enabled models' }) : null,
        groups.map(([kind, list]) => h('optgroup', { label: kindLabel(kind) }, list.map((m) => h('option', { value: m.id }, label(m))))),
        waiting.length
          ? h(
              'optgroup',
              { label: 'No online worker runs these (jobs wait in the queue)', 'data-group': 'waiting' },
              waiting.map((m) => h('option', { value: m.id }, `${label(m)} — ${kindLabel(m.kind)}, needs ${m.source.engine}`)),
            )
          : null,
      );
      // Until the operator picks, the preselection follows what runs now (a worker may come online
      // with some of its kinds first).
      const keep = chosenByOperator && models.some((m) => m.id === previous);
      const best = ready.find((m) => !isSynthetic(m.id)) ?? ready.find((m) => m.kind === 'image') ?? ready[0] ?? models[0];
      select.value = keep ? previous : (best?.id ?? '');
      showKind();
    },
  };
}

function field(id, label, control) {
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id, text: label }), control);
}

function visualFields(kind) {
  const dimension = (name) => h('input', { name, type: 'number', min: 16, max: 8192, step: 1, value: '512', required: true, inputmode: 'numeric' });
  return h(
    'fieldset',
    { 'data-kind': kind },
    h('legend', { text: kind === 'video' ? 'Video' : 'Image' }),
    field(`${kind}-prompt`, 'Prompt', h('textarea', { name: 'prompt', rows: 4, required: true })),
    field(`${kind}-negative`, 'Negative prompt (optional)', h('textarea', { name: 'negativePrompt', rows: 2 })),
    h('div', { class: 'field-row' }, field(`${kind}-width`, 'Width (px)', dimension('width')), field(`${kind}-height`, 'Height (px)', dimension('height'))),
  );
}

/** The task exactly as typed: prompts are sent whole, never trimmed or shortened. */
function taskFrom(kind, fieldset) {
  const value = (name) => fieldset.querySelector(`[name="${name}"]`).value;
  switch (kind) {
    case 'image':
    case 'video': {
      const task = { kind, prompt: value('prompt'), width: Number(value('width')), height: Number(value('height')) };
      if (value('negativePrompt').trim()) task.negativePrompt = value('negativePrompt');
      return task;
    }
    case 'llm':
      return { kind, messages: [{ role: 'user', content: value('message') }] };
    case 'audio_tts':
      return { kind, text: value('text') };
    case 'audio_stt':
      return { kind, inputUrl: value('inputUrl') };
    default:
      throw new Error(`this dashboard cannot build a ${kind} task yet`);
  }
}

/** Why a job for this model would wait, or '' when an online worker runs it now (strict routing: only its engine serves it). */
function waitingReason(model) {
  if (model.workersOnline === undefined || model.workersOnline > 0) return '';
  // The studio's own reason, when it knows more than "no worker runs the engine" (workers that run
  // it but speak the original protocol, or take smaller jobs).
  if (model.waitingReason && !model.waitingReason.startsWith('No online worker runs')) return model.waitingReason.replace(/\.$/, '');
  const vram = model.vramGbEstimate ? ` and takes jobs of ${model.vramGbEstimate} GB` : '';
  return `no online worker runs the "${model.source.engine}" engine${vram} for ${model.kind === 'image' ? 'this model' : `this ${kindLabel(model.kind)} model`}`;
}

function waitingNote(model) {
  const why = waitingReason(model);
  return why ? `${why[0].toUpperCase()}${why.slice(1)} yet: jobs wait in the queue until one connects.` : '';
}
