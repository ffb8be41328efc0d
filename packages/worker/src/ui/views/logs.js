import { h, patchList, setText } from '/kit/dom.js';
import { logLineText } from '../format.js';
import { copyButton } from '../widgets.js';

const LEVELS = [
  ['info', 'Info and up'],
  ['warn', 'Warnings and errors'],
  ['error', 'Errors only'],
];
const RANK = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

/** The lines that pass the level filter and the search (case-insensitive, in message, module and job id). */
export function visibleLogLines(entries, filter) {
  const min = RANK[filter.level] ?? 0;
  const needle = filter.search.trim().toLowerCase();
  return entries.filter((entry) => {
    if ((RANK[entry.level] ?? 0) < min) return false;
    if (!needle) return true;
    return `${entry.msg} ${entry.module} ${entry.jobId ?? ''}`.toLowerCase().includes(needle);
  });
}

/**
 * The Logs page: the daemon's last 1 000 lines (info and up), a level filter, search, Follow (keeps
 * the newest line in view) and Copy of the visible lines.
 * `ctx`: {store, setLogFilter(patch), announce}.
 */
export function createLogsView(ctx) {
  const levelSelect = h(
    'select',
    { id: 'log-level', onChange: (event) => ctx.setLogFilter({ level: event.target.value }) },
    LEVELS.map(([value, label]) => h('option', { value }, label)),
  );
  const search = h('input', { id: 'log-search', type: 'search', autocomplete: 'off', placeholder: 'text, module or job id', onInput: (event) => ctx.setLogFilter({ search: event.target.value }) });
  const follow = h('input', { id: 'log-follow', type: 'checkbox', checked: true, onChange: (event) => ctx.setLogFilter({ follow: event.target.checked }) });
  const count = h('p', { class: 'muted log-count' });
  const list = h('ol', { class: 'log-lines', tabindex: '0', 'aria-label': 'Daemon log, oldest first' });
  const empty = h('p', { class: 'empty muted' });
  const section = h(
    'section',
    { class: 'page', id: 'page-logs', 'aria-labelledby': 'logs-title' },
    h('h1', { id: 'logs-title', tabindex: '-1', text: 'Logs' }),
    h(
      'section',
      { class: 'panel' },
      h(
        'div',
        { class: 'toolbar' },
        h('div', { class: 'field' }, h('label', { for: 'log-level', text: 'Level' }), levelSelect),
        h('div', { class: 'field grow' }, h('label', { for: 'log-search', text: 'Search' }), search),
        h('div', { class: 'field check' }, follow, h('label', { for: 'log-follow', text: 'Follow' })),
        copyButton('Copy visible lines', () => visibleLogLines(ctx.store.logs.entries, ctx.store.logFilter).map(logLineText).join('\n'), ctx.announce, 'copy-logs'),
      ),
      count,
      empty,
      list,
    ),
  );

  function render() {
    const { logs, logFilter } = ctx.store;
    if (levelSelect.value !== logFilter.level) levelSelect.value = logFilter.level;
    if (follow.checked !== logFilter.follow) follow.checked = logFilter.follow;
    const visible = visibleLogLines(logs.entries, logFilter);
    setText(count, logs.loaded ? `Showing ${visible.length} of ${logs.entries.length} lines.` : '');
    empty.hidden = visible.length > 0;
    setText(empty, !logs.loaded ? 'Loading the log…' : logs.entries.length === 0 ? 'No log lines yet.' : 'No line matches the filter.');
    list.hidden = visible.length === 0;
    patchList(list, visible, {
      key: (entry) => entry.seq,
      signature: () => '',
      render: (entry) =>
        h(
          'li',
          { class: `log-line level-${entry.level}` },
          h('time', { datetime: entry.ts, text: clock(entry.ts) }),
          ' ',
          h('span', { class: `level level-${entry.level}`, text: entry.level.toUpperCase() }),
          ' ',
          h('span', { class: 'module', text: entry.module }),
          ' ',
          h('span', { class: 'msg', text: entry.msg }),
          entry.jobId ? h('span', { class: 'job-ref muted', text: ` job ${entry.jobId}` }) : null,
        ),
    });
    if (logFilter.follow) list.scrollTop = list.scrollHeight;
  }

  return { id: 'logs', title: 'Logs', section, render, heading: () => section.querySelector('#logs-title') };
}

function clock(iso) {
  const t = new Date(iso ?? '');
  return Number.isFinite(t.getTime()) ? t.toLocaleTimeString(undefined, { hour12: false }) : '';
}
