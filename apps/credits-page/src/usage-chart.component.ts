import { LitElement, css, html, svg } from 'lit';
import { styleMap } from 'lit/directives/style-map.js';
import { formatCredits, ratio } from './credits.model';
import { formatDay } from './time-zone.model';
import type { DayUsage } from './usage-range.model';
import { themeStyles } from './theme.view';

/**
 * Credits spent per day as an SVG bar chart: one `role="img"` with a summary for screen readers, each bar with its
 * own title (hover), and the same figures as a table behind "Show as table" (keyboard and screen-reader friendly,
 * and what a reader copies from). Heights are exact bigint ratios of the busiest day.
 */
export class TallyUsageChart extends LitElement {
  static override properties = {
    days: { attribute: false },
    unit: { type: String },
    decimals: { type: Number },
    timeZone: { type: String },
  };

  declare days: DayUsage[];
  declare unit: string;
  declare decimals: number;
  /** The zone whose days `days` are (the usage answer's `timeZone`), named by the table. */
  declare timeZone: string;

  constructor() {
    super();
    this.days = [];
    this.unit = 'credits';
    this.decimals = 6;
    this.timeZone = 'UTC';
  }

  static override styles = [
    themeStyles,
    css`
      :host {
        display: block;
      }
      svg {
        width: 100%;
        height: 160px;
        display: block;
      }
      .bar {
        fill: var(--_accent);
      }
      .bar.empty {
        fill: var(--_border);
      }
      .axis {
        stroke: var(--_border);
      }
      .labels {
        position: relative;
        height: 1.2rem;
        font-size: 0.75rem;
        color: var(--_muted);
      }
      .labels span {
        position: absolute;
        top: 0;
        white-space: nowrap;
      }
      details {
        margin-top: 0.5rem;
      }
      summary {
        cursor: pointer;
        color: var(--_accent);
      }
      table {
        border-collapse: collapse;
        width: 100%;
        margin-top: 0.5rem;
      }
      th,
      td {
        text-align: left;
        padding: 0.25rem 0.5rem;
        border-bottom: 1px solid var(--_border);
      }
      td.num,
      th.num {
        text-align: right;
      }
    `,
  ];

  override render() {
    const days = this.days;
    const max = days.reduce((m, d) => (d.credits > m ? d.credits : m), 0n);
    // Credits spent: rounded up, as the page's totals are (and the history's debits, away from zero).
    const fmt = (micros: bigint) => formatCredits(micros, { maxDecimals: this.decimals, rounding: 'up' });
    const width = 600;
    const height = 160;
    const top = 10;
    const bottom = 2;
    const plot = height - top - bottom;
    const step = days.length > 0 ? width / days.length : width;
    const barWidth = Math.max(2, step * 0.7);
    // Label every nth day so labels never overlap.
    const every = Math.max(1, Math.ceil(days.length / 10));
    const busiest = days.find((d) => d.credits === max && max > 0n);
    const summary =
      days.length === 0
        ? 'No days in this range.'
        : !busiest
          ? `No ${this.unit} spent on any of ${days.length} days.`
          : `${this.unit} spent per day over ${days.length} days; the busiest was ${formatDay(busiest.day)} with ${fmt(max)} ${this.unit}.`;
    return html`
      <svg viewBox="0 0 ${width} ${height}" preserveAspectRatio="none" role="img" aria-label=${summary} data-testid="usage-chart">
        <line class="axis" x1="0" x2=${width} y1=${top + plot} y2=${top + plot}></line>
        ${days.map((d, i) => {
          const h = max > 0n ? Math.max(d.credits > 0n ? 2 : 0, ratio(d.credits, max) * plot) : 0;
          const x = i * step + (step - barWidth) / 2;
          return svg`<rect class="bar ${d.credits > 0n ? '' : 'empty'}" x=${x} y=${top + plot - h} width=${barWidth} height=${Math.max(h, 1)}
              data-day=${d.day}><title>${formatDay(d.day)}: ${fmt(d.credits)} ${this.unit}, ${d.requests} requests</title></rect>
`;
        })}
      </svg>
      <div class="labels" aria-hidden="true">
        ${days.map((d, i) =>
          i % every === 0
            ? html`<span style=${styleMap({ left: `${((i + 0.5) / days.length) * 100}%`, transform: i === 0 ? 'none' : i + every >= days.length ? 'translateX(-100%)' : 'translateX(-50%)' })}
                >${formatDay(d.day)}</span
              >`
            : '',
        )}
      </div>
      <details>
        <summary>Show as table</summary>
        <table data-testid="usage-by-day">
          <caption class="visually-hidden">${this.unit} spent per day (${this.timeZone})</caption>
          <thead>
            <tr><th scope="col">Day (${this.timeZone})</th><th scope="col" class="num">${this.unit}</th><th scope="col" class="num">Requests</th></tr>
          </thead>
          <tbody>
            ${days.map((d) => html`<tr><th scope="row">${d.day}</th><td class="num">${fmt(d.credits)}</td><td class="num">${d.requests}</td></tr>`)}
          </tbody>
        </table>
      </details>
    `;
  }
}

if (!customElements.get('tally-usage-chart')) customElements.define('tally-usage-chart', TallyUsageChart);

declare global {
  interface HTMLElementTagNameMap {
    'tally-usage-chart': TallyUsageChart;
  }
}
