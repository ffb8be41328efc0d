// The Config page's fields: labels, input types, and checks that mirror the daemon's config schema
// (packages/worker/src/config/schema.ts), so a mistake shows while typing. The daemon still
// validates every save; its answer is what counts.

const STUDIO_SCHEMES = ['http:', 'https:', 'ws:', 'wss:'];
const HTTP_SCHEMES = ['http:', 'https:'];

function urlWith(value, schemes) {
  try {
    const url = new URL(value);
    return schemes.includes(url.protocol) && url.hostname !== '';
  } catch {
    return false;
  }
}

const isNumber = (value) => typeof value === 'number' && Number.isFinite(value);

/**
 * Groups of fields in the order the page shows them. `check(value)` answers what the value must be
 * when it is wrong (the daemon's wording), else undefined. `restart`: applies after a restart.
 * `actual(status)`: what really happens, when that is not the config's value to edit
 * ({value, note}: the field shows it read-only, with the note), else undefined.
 */
export const CONFIG_GROUPS = [
  {
    title: 'Connection',
    fields: [
      {
        name: 'apiBaseUrl',
        label: 'Studio URL',
        type: 'url',
        restart: true,
        hint: 'The studio this worker takes jobs from, e.g. https://studio.example/.',
        check: (v) => (typeof v === 'string' && urlWith(v, STUDIO_SCHEMES) ? undefined : 'must be an http, https, ws or wss URL such as "https://studio.example/"'),
      },
      {
        name: 'label',
        label: 'Label',
        type: 'text',
        maxLength: 100,
        hint: 'How the studio operator sees this machine; empty for none.',
        check: (v) => (v === null || (typeof v === 'string' && v.length <= 100) ? undefined : 'must be a string of at most 100 characters'),
      },
    ],
  },
  {
    title: 'Jobs',
    fields: [
      {
        name: 'vramThresholdGb',
        label: 'GPU memory offered to the studio (GB)',
        type: 'number',
        min: 0,
        step: 'any',
        hint: 'The studio offers only jobs whose model fits in this much memory. Applies with the next heartbeat.',
        check: (v) => (isNumber(v) && v >= 0 ? undefined : 'must be a number ≥ 0'),
      },
      { name: 'onlyWhenIdle', label: 'Take jobs only while nobody uses this computer', type: 'checkbox' },
      { name: 'prefetch', label: 'Accept the next job while one runs (prefetch)', type: 'checkbox', hint: 'The engine never waits for an upload; a job may wait a little longer for this machine.' },
      {
        name: 'failureCooldownSecs',
        label: 'Pause after 3 failed jobs in a row for (seconds)',
        type: 'number',
        min: 0,
        step: 'any',
        hint: '0 never pauses.',
        check: (v) => (isNumber(v) && v >= 0 ? undefined : 'must be a number of seconds ≥ 0 (0 = never pause after failed jobs)'),
      },
      {
        name: 'shutdownGraceSecs',
        label: 'On shutdown, let a running job finish for (seconds)',
        type: 'number',
        min: 0,
        step: 'any',
        hint: 'After that the job goes back to the studio.',
        check: (v) => (isNumber(v) && v >= 0 ? undefined : 'must be a number of seconds ≥ 0'),
      },
    ],
  },
  {
    title: 'Auto-update',
    fields: [
      {
        name: 'autoUpdateEnabled',
        label: 'Install new versions automatically',
        type: 'checkbox',
        // A git checkout is never updated by the daemon, whatever config.toml says.
        actual: (status) =>
          status?.startup?.installKind === 'git' ? { value: false, note: 'Off here: this worker runs from a git checkout, which is updated with git (git pull, then npm install).' } : undefined,
      },
      {
        name: 'autoUpdateIntervalSecs',
        label: 'Check every (seconds)',
        type: 'number',
        min: 60,
        step: 1,
        check: (v) => (isNumber(v) && Number.isInteger(v) && v >= 60 ? undefined : 'must be a whole number of seconds ≥ 60'),
      },
      {
        name: 'autoUpdateFeed',
        label: 'Update feed URL',
        type: 'url',
        check: (v) => (typeof v === 'string' && urlWith(v, HTTP_SCHEMES) ? undefined : 'must be an http or https URL'),
      },
      { name: 'autoUpdatePrerelease', label: 'Include prereleases', type: 'checkbox' },
    ],
  },
  {
    title: 'Models',
    fields: [
      {
        name: 'modelsRoot',
        label: 'Models folder',
        type: 'text',
        restart: true,
        hint: 'Where model files are downloaded (~ means your home folder).',
        check: (v) => (typeof v === 'string' && v.length > 0 ? undefined : 'must be a non-empty path'),
      },
    ],
  },
  {
    title: 'Start-up and notifications',
    fields: [
      {
        name: 'autoStart',
        label: 'Start the worker when I log in',
        type: 'checkbox',
        // Only a login entry starts it; the config value is what the studio is told.
        actual: (status) =>
          status?.startup
            ? status.startup.autostartInstalled
              ? { value: true, note: `A login entry starts it. To remove it: ${status.startup.setupCommand} --remove` }
              : { value: false, note: `No login entry starts it. To add one: ${status.startup.setupCommand}` }
            : undefined,
      },
      { name: 'startMinimised', label: 'Start without opening a window', type: 'checkbox' },
      { name: 'notifyOnComplete', label: 'Notify me when a job completes', type: 'checkbox' },
      { name: 'notifyOnFailure', label: 'Notify me when a job fails', type: 'checkbox' },
    ],
  },
];

const KNOWN = new Map(CONFIG_GROUPS.flatMap((group) => group.fields.map((field) => [field.name, field])));

/** Every field to show for `config`: the known ones, then any setting a newer daemon added. */
export function fieldsFor(config) {
  const groups = CONFIG_GROUPS.map((group) => ({ ...group, fields: group.fields.filter((field) => field.name in config) }));
  const extra = Object.keys(config)
    .filter((name) => !KNOWN.has(name))
    .map((name) => {
      const value = config[name];
      const type = typeof value === 'boolean' ? 'checkbox' : typeof value === 'number' ? 'number' : 'text';
      return { name, label: name, type, step: 'any' };
    });
  if (extra.length > 0) groups.push({ title: 'Other settings', fields: extra });
  return groups.filter((group) => group.fields.length > 0);
}

/** A field's value as the daemon takes it: numbers as numbers (null when empty), an empty label as null. */
export function readInput(field, input) {
  if (field.type === 'checkbox') return input.checked;
  if (field.type === 'number') return input.value.trim() === '' ? null : Number(input.value);
  if (field.name === 'label') return input.value === '' ? null : input.value;
  return input.value;
}

export function sameValue(a, b) {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/**
 * Split the daemon's `invalid_config` message into the fields it names: "vramThresholdGb must be a
 * number ≥ 0; label: …" → [{name, message}]. What names no field of the form comes back as `rest`.
 */
export function fieldErrorsFrom(message, names) {
  const byField = [];
  const rest = [];
  for (const part of String(message).split(/;\s+/)) {
    const match = /^"?([A-Za-z][\w]*)"?(?=\s|:)/.exec(part);
    if (match && names.includes(match[1])) byField.push({ name: match[1], message: part });
    else rest.push(part);
  }
  return { byField, rest: rest.join('; ') };
}
