import { h, setChildren } from './dom.js';

/** Polite announcements for screen readers (state changes, results of actions) into `region`. */
export function createAnnouncer(region) {
  return function announce(text) {
    region.textContent = '';
    // A fresh text node after a tick makes the same sentence announce again.
    setTimeout(() => {
      region.textContent = text;
    }, 50);
  };
}

/**
 * A dismissable page-wide notice in `area`. `tag` says what a notice is about, so `hide(tag)` only
 * takes down a notice of that kind (an action's failure stays when the feed recovers).
 */
export function createNotice(area) {
  function hide(tag) {
    if (tag && area.dataset.tag !== tag) return;
    area.hidden = true;
    area.replaceChildren();
  }
  function show(message, tag = 'action') {
    area.dataset.tag = tag;
    setChildren(area, h('p', { text: message }), h('button', { type: 'button', class: 'secondary small', onClick: () => hide() }, 'Dismiss'));
    area.hidden = false;
  }
  return { show, hide };
}
