import { css } from 'lit';

/** The dark theme's colours: with theme="dark", or the reader's system setting when the product sets no theme. */
const darkColours = css`
  --_accent: var(--tally-accent, #93c5fd);
  --_accent-fg: var(--tally-accent-fg, #0b1220);
  --_bg: var(--tally-bg, #0f172a);
  --_surface: var(--tally-surface, #1e293b);
  --_fg: var(--tally-fg, #f1f5f9);
  --_muted: var(--tally-muted, #cbd5e1);
  --_border: var(--tally-border, #475569);
  --_warning-bg: var(--tally-warning-bg, #422006);
  --_warning-fg: var(--tally-warning-fg, #fde68a);
  --_danger-bg: var(--tally-danger-bg, #450a0a);
  --_danger-fg: var(--tally-danger-fg, #fecaca);
  --_ok: var(--tally-ok, #86efac);
  --_focus: var(--tally-focus, #bfdbfe);
  color-scheme: dark;
`;

/**
 * The look both elements share, every colour a CSS custom property a product can set from outside (they inherit
 * through the shadow root): `--tally-accent`, `--tally-bg`, `--tally-surface`, `--tally-fg`, `--tally-muted`,
 * `--tally-border`, `--tally-warning-bg`, `--tally-warning-fg`, `--tally-danger-bg`, `--tally-danger-fg`,
 * `--tally-ok`, `--tally-radius`, `--tally-font`. The defaults meet WCAG AA contrast (4.5:1 for text) in both
 * themes; `theme="dark"` or `theme="light"` picks one, otherwise the reader's system setting does.
 */
export const themeStyles = css`
  :host {
    --_accent: var(--tally-accent, #1d4ed8);
    --_accent-fg: var(--tally-accent-fg, #ffffff);
    --_bg: var(--tally-bg, #ffffff);
    --_surface: var(--tally-surface, #f6f7f9);
    --_fg: var(--tally-fg, #111827);
    --_muted: var(--tally-muted, #4b5563);
    --_border: var(--tally-border, #d1d5db);
    --_warning-bg: var(--tally-warning-bg, #fef3c7);
    --_warning-fg: var(--tally-warning-fg, #713f12);
    --_danger-bg: var(--tally-danger-bg, #fee2e2);
    --_danger-fg: var(--tally-danger-fg, #7f1d1d);
    --_ok: var(--tally-ok, #15803d);
    --_radius: var(--tally-radius, 10px);
    --_focus: var(--tally-focus, #2563eb);
    color-scheme: light;
    font-family: var(--tally-font, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif);
    color: var(--_fg);
    line-height: 1.45;
  }
  :host([theme='dark']) {
    ${darkColours}
  }
  @media (prefers-color-scheme: dark) {
    :host(:not([theme='light']):not([theme='dark'])) {
      ${darkColours}
    }
  }
  :focus-visible {
    outline: 3px solid var(--_focus);
    outline-offset: 2px;
  }
  .visually-hidden {
    position: absolute !important;
    width: 1px;
    height: 1px;
    padding: 0;
    margin: -1px;
    overflow: hidden;
    clip: rect(0 0 0 0);
    white-space: nowrap;
    border: 0;
  }
  .num {
    font-variant-numeric: tabular-nums;
  }
`;
