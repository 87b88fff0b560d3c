/**
 * The soak's per-interval series as a self-contained SVG (memory, latencies, throughput, one panel each),
 * so BENCHMARKS.md can show the trend beside its table. Written by hand: three polylines a panel do not
 * need a charting library and a headless browser to render it.
 */

export interface SoakRow {
  minute: number;
  webhooksPerSecond: number;
  ackP99: number;
  pushP99: number;
  projectionLagP99: number;
  eventLoopP99: number;
  rssMiB: number;
  heapMiB: number;
}

interface Panel {
  title: string;
  series: Array<{ label: string; color: string; value: (row: SoakRow) => number }>;
}

const PANELS: Panel[] = [
  {
    title: 'Server memory (MiB)',
    series: [
      { label: 'RSS', color: '#1f77b4', value: (row) => row.rssMiB },
      { label: 'heap used', color: '#ff7f0e', value: (row) => row.heapMiB },
    ],
  },
  {
    title: 'p99 per interval (ms)',
    series: [
      { label: 'webhook → subscriber', color: '#2ca02c', value: (row) => row.pushP99 },
      { label: 'ack', color: '#d62728', value: (row) => row.ackP99 },
      { label: 'projection lag (bucket bound)', color: '#9467bd', value: (row) => row.projectionLagP99 },
      { label: 'event-loop delay', color: '#8c564b', value: (row) => row.eventLoopP99 },
    ],
  },
  {
    title: 'Webhooks acknowledged per second',
    series: [{ label: 'webhooks/s', color: '#17becf', value: (row) => row.webhooksPerSecond }],
  },
];

const WIDTH = 860;
const PANEL_HEIGHT = 200;
const LEFT = 60;
const RIGHT = 20;
const TOP = 40;
const GAP = 60;

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** A round number at or above `value`, so the axis reads 0, 25, 50… rather than 0, 23.7, 47.4… */
function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((step) => step * magnitude).find((bound) => bound >= value)!;
}

export function soakChart(rows: SoakRow[], title: string): string {
  const height = TOP + PANELS.length * (PANEL_HEIGHT + GAP);
  const plotWidth = WIDTH - LEFT - RIGHT;
  const lastMinute = rows.at(-1)?.minute ?? 1;
  const x = (minute: number) => LEFT + (minute / lastMinute) * plotWidth;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${LEFT}" y="22" font-size="15">${escape(title)}</text>`,
  ];
  PANELS.forEach((panel, p) => {
    const top = TOP + p * (PANEL_HEIGHT + GAP) + 20;
    const bottom = top + PANEL_HEIGHT;
    const values = rows.flatMap((row) => panel.series.map((series) => series.value(row)));
    const max = niceCeiling(Math.max(...values.filter(Number.isFinite)) * 1.05);
    const y = (value: number) => bottom - (value / max) * PANEL_HEIGHT;
    parts.push(`<text x="${LEFT}" y="${top - 8}" font-weight="bold">${escape(panel.title)}</text>`);
    for (let tick = 0; tick <= 4; tick++) {
      const value = (max * tick) / 4;
      parts.push(
        `<line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${y(value)}" y2="${y(value)}" stroke="#ddd"/>`,
        `<text x="${LEFT - 6}" y="${y(value) + 4}" text-anchor="end">${+value.toFixed(2)}</text>`,
      );
    }
    const step = Math.max(1, Math.ceil(lastMinute / 10));
    for (let minute = 0; minute <= lastMinute; minute += step)
      parts.push(`<text x="${x(minute)}" y="${bottom + 16}" text-anchor="middle">${minute}</text>`);
    parts.push(`<text x="${WIDTH - RIGHT}" y="${bottom + 32}" text-anchor="end">minutes</text>`);
    panel.series.forEach((series, s) => {
      const points = rows
        .filter((row) => Number.isFinite(series.value(row)))
        .map((row) => `${x(row.minute).toFixed(1)},${y(series.value(row)).toFixed(1)}`)
        .join(' ');
      parts.push(
        `<polyline fill="none" stroke="${series.color}" stroke-width="2" points="${points}"/>`,
        `<text x="${LEFT + 10 + s * 190}" y="${bottom + 32}" fill="${series.color}">${escape(series.label)}</text>`,
      );
    });
  });
  parts.push('</svg>');
  return parts.join('\n');
}
