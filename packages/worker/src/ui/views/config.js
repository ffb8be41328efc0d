import { fieldErrorsFrom, fieldsFor, readInput, sameValue } from '../config-fields.js';
import { h, setChildren } from '/kit/dom.js';

/**
 * The Config page: every setting `GET /daemon/config` returns, as typed inputs grouped like the
 * original's page, checked while typing, saved with `PUT /daemon/config` (only the changed fields).
 * The daemon's refusal is shown next to the field it names; settings that apply only after a
 * restart are listed after a save. No credential is ever part of this form (the API has none).
 * `ctx`: {store, loadConfig(), saveConfig(patch) → answer (throws ApiError), announce}.
 */
export function createConfigView(ctx) {
  const form = h('form', { class: 'config-form', novalidate: true, 'aria-labelledby': 'config-title' });
  const result = h('div', { class: 'form-result', role: 'status' });
  const section = h(
    'section',
    { class: 'page', id: 'page-config', 'aria-labelledby': 'config-title' },
    h('h1', { id: 'config-title', tabindex: '-1', text: 'Config' }),
    h('section', { class: 'panel' }, h('p', { class: 'hint', text: 'Saved to config.toml. Credentials (the studio token, the registration secret, the local API token) are never shown or changed here.' }), form, result),
  );
  /** The config the form was built from, and each field's input. */
  let base = null;
  let inputs = new Map();
  let saving = false;
  /** The `actual` answers the form was built with; the form is rebuilt when the daemon reports others. */
  let builtFor = '';

  function actualKey() {
    return JSON.stringify(ctx.store.status?.startup ?? null);
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void save();
  });

  function build(config) {
    base = config;
    builtFor = actualKey();
    inputs = new Map();
    const groups = fieldsFor(config);
    setChildren(
      form,
      groups.map((group) =>
        h(
          'fieldset',
          {},
          h('legend', { text: group.title }),
          group.fields.map((field) => fieldView(field, config[field.name])),
        ),
      ),
      h(
        'div',
        { class: 'form-actions' },
        h('button', { type: 'submit', class: 'primary', id: 'config-save' }, 'Save'),
        h('button', { type: 'button', class: 'secondary', id: 'config-revert', onClick: () => revert() }, 'Undo changes'),
      ),
    );
  }

  function fieldView(field, configValue) {
    const id = `cfg-${field.name}`;
    const hintId = `${id}-hint`;
    const errorId = `${id}-error`;
    const actual = field.actual?.(ctx.store.status);
    if (actual) {
      // What really happens, not an edit of config.toml: shown read-only, never part of a save.
      const input = h('input', { id, name: field.name, type: 'checkbox', checked: actual.value, disabled: true, 'aria-describedby': hintId });
      return h('div', { class: 'field check', 'data-field': field.name }, input, h('label', { for: id, text: field.label }), h('p', { class: 'hint', id: hintId, text: actual.note }));
    }
    const value = configValue;
    const describedBy = [field.hint || field.restart ? hintId : null, errorId].filter(Boolean).join(' ');
    const common = { id, name: field.name, 'aria-describedby': describedBy, 'data-focus-key': id, onInput: () => onEdit(field), onChange: () => onEdit(field) };
    const input =
      field.type === 'checkbox'
        ? h('input', { ...common, type: 'checkbox', checked: Boolean(value) })
        : h('input', {
            ...common,
            type: field.type === 'number' ? 'number' : field.type === 'url' ? 'url' : 'text',
            value: value === null || value === undefined ? '' : String(value),
            min: field.min,
            step: field.step,
            maxlength: field.maxLength,
            inputmode: field.type === 'number' ? 'decimal' : undefined,
            spellcheck: field.type === 'text' ? 'false' : undefined,
            autocomplete: 'off',
          });
    inputs.set(field.name, { field, input });
    const hint = field.hint || field.restart ? h('p', { class: 'hint', id: hintId }, field.hint ?? '', field.restart ? h('span', { class: 'restart-note', text: `${field.hint ? ' ' : ''}Applies after a restart.` }) : null) : null;
    const error = h('p', { class: 'field-error', id: errorId, hidden: true });
    if (field.type === 'checkbox') return h('div', { class: 'field check', 'data-field': field.name }, input, h('label', { for: id, text: field.label }), hint, error);
    return h('div', { class: 'field', 'data-field': field.name }, h('label', { for: id, text: field.label }), input, hint, error);
  }

  function setError(name, message) {
    const entry = inputs.get(name);
    if (!entry) return;
    const error = form.querySelector(`#cfg-${CSS.escape(name)}-error`);
    error.textContent = message ?? '';
    error.hidden = !message;
    if (message) entry.input.setAttribute('aria-invalid', 'true');
    else entry.input.removeAttribute('aria-invalid');
  }

  function onEdit(field) {
    const { input } = inputs.get(field.name);
    const problem = field.check?.(readInput(field, input));
    setError(field.name, problem ? `${field.label} ${problem}.` : undefined);
    setChildren(result);
  }

  function patch() {
    const changes = {};
    for (const [name, { field, input }] of inputs) {
      const value = readInput(field, input);
      if (!sameValue(value, base[name])) changes[name] = value;
    }
    return changes;
  }

  function revert() {
    if (base) build(base);
    setChildren(result, h('p', { class: 'muted', text: 'Changes undone.' }));
  }

  async function save() {
    if (saving || !base) return;
    const changes = patch();
    if (Object.keys(changes).length === 0) {
      setChildren(result, h('p', { class: 'muted', text: 'Nothing changed: there is nothing to save.' }));
      return;
    }
    saving = true;
    form.querySelector('#config-save').disabled = true;
    try {
      // Sent even when a check above flagged a field: the daemon decides, and says why.
      const answer = await ctx.saveConfig(changes);
      const { restartRequired = [], ...config } = answer;
      ctx.store.config = config;
      build(config);
      const labels = restartRequired.map((name) => inputs.get(name)?.field.label ?? name);
      setChildren(
        result,
        h('p', { class: 'saved' }, h('strong', { text: 'Saved.' }), ` ${Object.keys(changes).length} setting${Object.keys(changes).length === 1 ? '' : 's'} written to config.toml.`),
        labels.length > 0
          ? h('p', { class: 'restart-required' }, h('strong', { text: 'Restart needed: ' }), `${labels.join(', ')} take${labels.length === 1 ? 's' : ''} effect after the daemon restarts (studio-worker service restart, or stop and start studio-worker run).`)
          : h('p', { class: 'muted', text: 'Every change applies now.' }),
      );
      ctx.announce(labels.length > 0 ? `Settings saved. Restart needed for ${labels.join(', ')}.` : 'Settings saved.');
    } catch (error) {
      showRefusal(error);
    } finally {
      saving = false;
      const button = form.querySelector('#config-save');
      if (button) button.disabled = false;
    }
  }

  function showRefusal(error) {
    if (error?.status === 401) return;
    const names = [...inputs.keys()];
    for (const name of names) setError(name, undefined);
    if (error?.code === 'invalid_config') {
      const { byField, rest } = fieldErrorsFrom(error.message, names);
      for (const { name, message } of byField) setError(name, message);
      const first = byField[0] && inputs.get(byField[0].name)?.input;
      setChildren(result, h('p', { class: 'error', role: 'alert' }, h('strong', { text: 'Not saved: ' }), rest || 'the daemon refused the marked settings.'));
      first?.focus();
      return;
    }
    setChildren(result, h('p', { class: 'error', role: 'alert' }, h('strong', { text: 'Not saved: ' }), error?.message ?? String(error)));
  }

  function render() {
    const config = ctx.store.config;
    if (!config) {
      if (!base) setChildren(form, h('p', { class: 'muted', text: ctx.store.configError ?? 'Loading the settings…' }));
      return;
    }
    // Rebuild from the daemon's copy only when nothing is being edited (a save rebuilds itself).
    if (!base || ((!sameValue(config, base) || builtFor !== actualKey()) && Object.keys(patch()).length === 0)) build(config);
  }

  return {
    id: 'config',
    title: 'Config',
    section,
    render,
    heading: () => section.querySelector('#config-title'),
    onShow: () => ctx.loadConfig(),
  };
}
