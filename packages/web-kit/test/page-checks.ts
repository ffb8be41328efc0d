// In-page checks both web front ends' browser tests run (the studio dashboard's and the worker's web
// UI's): passed to page.evaluate, so each function is self-contained.

// The project compiles against Node's types only; these module-local declarations type the few
// browser globals used here and vanish at runtime, where the page's own globals are used.
type El = any;
declare const document: any;
declare const window: any;
declare const Node: { TEXT_NODE: number };
declare function getComputedStyle(el: El): any;

/**
 * Visible text whose contrast against its effective background is below WCAG AA (4.5:1, or 3:1
 * for large text). Disabled controls are exempt, as WCAG allows.
 */
export function contrastProblems(): string[] {
  type Rgba = { r: number; g: number; b: number; a: number };
  const parse = (value: string): Rgba => {
    const match = /rgba?\(([^)]+)\)/.exec(value);
    if (!match) return { r: 0, g: 0, b: 0, a: 0 };
    const parts = (match[1] as string).split(/[\s,/]+/).filter(Boolean).map(Number);
    return { r: parts[0] ?? 0, g: parts[1] ?? 0, b: parts[2] ?? 0, a: parts[3] ?? 1 };
  };
  const over = (top: Rgba, bottom: Rgba): Rgba => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  const channel = (c: number) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  const luminance = (c: Rgba) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const background = (el: El): Rgba => {
    const layers: Rgba[] = [];
    for (let node: El = el; node; node = node.parentElement) {
      const bg = parse(getComputedStyle(node).backgroundColor);
      if (bg.a > 0) layers.push(bg);
      if (bg.a >= 1) break;
    }
    // Nothing opaque up the tree: the canvas, which follows the page's color-scheme.
    let result: Rgba = parse(getComputedStyle(document.documentElement).backgroundColor);
    if (result.a < 1) result = { r: 255, g: 255, b: 255, a: 1 };
    for (const layer of layers.reverse()) result = over(layer, result);
    return result;
  };
  const problems: string[] = [];
  for (const el of document.querySelectorAll('body *') as El[]) {
    const ownText = [...el.childNodes].filter((n: El) => n.nodeType === Node.TEXT_NODE).map((n: El) => n.textContent ?? '').join('').trim();
    if (!ownText || !el.checkVisibility({ opacityProperty: true, visibilityProperty: true })) continue;
    if (el.closest(':disabled, .visually-hidden, [aria-hidden="true"], option, noscript')) continue;
    const style = getComputedStyle(el);
    const bg = background(el);
    const fg = over(parse(style.color), bg);
    const [light, dark] = [luminance(fg), luminance(bg)].sort((a, b) => b - a) as [number, number];
    const ratio = (light + 0.05) / (dark + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) problems.push(`<${el.tagName.toLowerCase()} class="${el.className}"> "${ownText.slice(0, 40)}": ${ratio.toFixed(2)}:1`);
  }
  return problems;
}

/** Visible form controls and buttons without an accessible name. */
export function unlabelledControls(): string[] {
  const problems: string[] = [];
  for (const el of document.querySelectorAll('input, select, textarea, button, progress') as El[]) {
    if (!el.checkVisibility()) continue;
    const named =
      (el.tagName !== 'BUTTON' && (el.labels?.length ?? 0) > 0) ||
      !!el.getAttribute('aria-label') ||
      !!el.getAttribute('aria-labelledby') ||
      (el.tagName === 'BUTTON' && (el.textContent ?? '').trim().length > 0);
    if (!named) problems.push(el.outerHTML.slice(0, 120));
  }
  return problems;
}

/** The focused element and whether it draws a visible focus ring. */
export function focusRing(): { element: string; visible: boolean } {
  const el = document.activeElement;
  if (!el || el === document.body) return { element: 'body', visible: false };
  const style = getComputedStyle(el);
  const visible = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
  return { element: `<${el.tagName.toLowerCase()}> ${(el.textContent ?? '').trim().slice(0, 30)}`, visible };
}

/** True when the page scrolls sideways (it must not, at any supported width). */
export function overflowsHorizontally(): boolean {
  return document.documentElement.scrollWidth > window.innerWidth + 1;
}
