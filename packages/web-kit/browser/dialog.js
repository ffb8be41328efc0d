import { h } from './dom.js';

/**
 * Modal questions on a native <dialog>: it traps focus, closes on Escape and is announced as a
 * dialog. Each answers a promise; focus goes back to where it was.
 */
function ask({ title, message, confirmLabel, cancelLabel = 'Cancel', danger, field }) {
  const returnFocus = document.activeElement;
  const titleId = `dialog-title-${Math.random().toString(36).slice(2)}`;
  const input = field
    ? h('textarea', { id: `${titleId}-input`, name: 'answer', rows: 3, maxlength: field.maxLength ?? 500, autofocus: true })
    : undefined;
  const form = h(
    'form',
    { method: 'dialog' },
    h('h2', { id: titleId, text: title }),
    message ? h('p', { text: message }) : null,
    field ? h('label', { for: input.id, text: field.label }) : null,
    input,
    h(
      'div',
      { class: 'dialog-actions' },
      h('button', { type: 'submit', value: 'cancel', class: 'secondary', autofocus: !field }, cancelLabel),
      h('button', { type: 'submit', value: 'confirm', class: danger ? 'danger' : 'primary' }, confirmLabel),
    ),
  );
  const dialog = h('dialog', { 'aria-labelledby': titleId }, form);
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      const confirmed = dialog.returnValue === 'confirm';
      const answer = field ? (confirmed ? input.value.trim() : null) : confirmed;
      dialog.remove();
      if (returnFocus instanceof HTMLElement && returnFocus.isConnected) returnFocus.focus();
      resolve(answer);
    });
    dialog.showModal();
  });
}

/** Answers true when the operator confirmed. */
export function askConfirm({ title, message, confirmLabel = 'OK', cancelLabel, danger = false }) {
  return ask({ title, message, confirmLabel, cancelLabel, danger });
}

/** Answers the text typed (possibly empty), or null when cancelled. */
export function askText({ title, message, label, confirmLabel = 'OK', danger = false, maxLength }) {
  return ask({ title, message, confirmLabel, danger, field: { label, maxLength } });
}
