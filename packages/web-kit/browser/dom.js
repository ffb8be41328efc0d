// DOM helpers for both web front ends (the studio dashboard and the worker's web UI). Text from the
// server (prompts, log lines, model and machine names) always goes in as text nodes or attribute
// values, never as HTML, so nothing a server relays can inject markup.

/**
 * Build an element. `props`: `class`, `text`, `on<Event>` handlers, `value`/`checked`/`selected` as
 * properties, boolean attributes (true adds, false/null/undefined leaves out), everything else as attributes.
 * Children: nodes, strings, numbers and arrays of them; null/false/undefined are skipped.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'text') el.textContent = String(value);
    else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === 'value' || name === 'checked' || name === 'selected') el[name] = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(parent, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function setChildren(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
}

/** Set text only when it changed (no mutation, so no flicker and no lost selection). */
export function setText(el, text) {
  const value = String(text ?? '');
  if (el.textContent !== value) el.textContent = value;
}

/**
 * Keyed list update. A row is rebuilt only when its signature changed; rows move instead of being
 * rebuilt when the order changes; `update(node, item)` patches fast-changing parts (progress,
 * elapsed time) in place, so a button under the pointer is never replaced by a live update. When a
 * rebuilt row held the focus, its successor's element with the same `data-focus-key` takes it.
 */
export function patchList(container, items, { key, signature, render, update }) {
  const focusKey = focusKeyWithin(container);
  const old = new Map();
  for (const node of container.children) if (node.dataset.key !== undefined) old.set(node.dataset.key, node);
  const wanted = [];
  for (const item of items) {
    const k = String(key(item));
    const sig = signature(item);
    let node = old.get(k);
    if (node && node.dataset.sig === sig) old.delete(k);
    else {
      node = render(item);
      node.dataset.key = k;
      node.dataset.sig = sig;
    }
    update?.(node, item);
    wanted.push(node);
  }
  for (const node of old.values()) node.remove();
  for (const [index, node] of wanted.entries()) {
    if (container.children[index] !== node) container.insertBefore(node, container.children[index] ?? null);
  }
  while (container.children.length > wanted.length) container.lastElementChild.remove();
  restoreFocus(container, focusKey);
}

/** Rebuild a region only when its signature changed (see patchList for why that matters). */
export function patchRegion(container, signature, build) {
  if (container.dataset.sig === signature) return;
  container.dataset.sig = signature;
  const built = build();
  const focusKey = focusKeyWithin(container);
  setChildren(container, ...(Array.isArray(built) ? built : [built]));
  restoreFocus(container, focusKey);
}

function focusKeyWithin(container) {
  const active = document.activeElement;
  return active && container.contains(active) ? active.dataset.focusKey : undefined;
}

function restoreFocus(container, focusKey) {
  if (!focusKey) return;
  const active = document.activeElement;
  if (active && active !== document.body && container.contains(active)) return;
  container.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus({ preventScroll: true });
}
