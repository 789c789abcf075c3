// The entities page: every queue, topic and subscription the key may see, with counts, the age of
// the oldest message, rates and a chart, refreshed every two seconds.

import { api, can, canListNamespace, entityHash, entityLabel, kindOf, session } from './api.js';
import { lineChart } from './chart.js';
import { announce, badge, duration, h, number, rate, replace } from './dom.js';

export const pollMs = 2000;
/** How far back the charts go. */
export const chartWindowMs = 5 * 60 * 1000;
/** The span rates are measured over. */
const rateWindowMs = 10 * 1000;

/** Samples by entity label, oldest first: {at, counts, last} (last: the last sequence number). */
const history = new Map();
/** The enqueue time of each entity's oldest message, by label: {key (the counts), at, enqueuedTime}. */
const oldest = new Map();

function total(counts) {
  return counts.active + counts.locked + counts.scheduled + counts.deferred + counts.deadLettered;
}

function record(label, counts, last, at) {
  const samples = history.get(label) ?? [];
  samples.push({ at, counts, last });
  while (samples.length && at - samples[0].at > chartWindowMs) samples.shift();
  history.set(label, samples);
}

/**
 * Messages sent and settled per second over the last ten seconds, from successive samples: sent is
 * the change of the last sequence number; settled (completed, expired or purged) is what was sent
 * less what the counts grew by.
 */
export function rates(label) {
  const samples = history.get(label) ?? [];
  if (samples.length < 2) return { send: null, settle: null };
  const latest = samples[samples.length - 1];
  const first = samples.find((sample) => latest.at - sample.at <= rateWindowMs) ?? samples[0];
  const seconds = (latest.at - first.at) / 1000;
  if (seconds <= 0 || first === latest) return { send: null, settle: null };
  if (latest.last === undefined || latest.last === null || first.last === undefined || first.last === null) {
    return { send: null, settle: null };
  }
  const sent = Math.max(0, latest.last - first.last);
  const settled = latest.counts && first.counts ? Math.max(0, sent - (total(latest.counts) - total(first.counts))) : null;
  return { send: sent / seconds, settle: settled === null ? null : settled / seconds };
}

/** The shortest span a chart shows: with less history than the full window, the lines fill it. */
const shortestChartMs = 30 * 1000;

/** The chart of an entity's active and dead-lettered counts over the last minutes. */
export function countsChart(label, options) {
  const samples = history.get(label) ?? [];
  const span = samples.length ? Date.now() - samples[0].at : 0;
  return lineChart(
    [
      { label: 'active', className: 'active', points: samples.map((s) => [s.at, s.counts.active]) },
      { label: 'dead-lettered', className: 'dead', points: samples.map((s) => [s.at, s.counts.deadLettered]) },
    ],
    Math.min(chartWindowMs, Math.max(shortestChartMs, span)),
    options,
  );
}

/**
 * The age of the oldest message of a queue or subscription that is not scheduled (a scheduled
 * message's enqueue time is when it is due), among the first ones a peek finds; or null.
 */
async function oldestAge(entity, counts) {
  if (!can('listen') || !counts || counts.active + counts.locked + counts.deferred === 0) return null;
  // The oldest enqueue time is peeked again every ten seconds, or sooner when the counts change.
  const label = entityLabel(entity);
  const key = JSON.stringify(counts);
  let known = oldest.get(label);
  if (!known || known.key !== key || Date.now() - known.at > 10000) {
    const answer = await api.peek(entity, 0, 20);
    const first = answer.messages.find((message) => message.state !== 'scheduled');
    known = { key, at: Date.now(), enqueuedTime: first ? first.enqueuedTime : null };
    oldest.set(label, known);
  }
  return known.enqueuedTime === null ? null : Math.max(0, Date.now() - known.enqueuedTime);
}

/** Every entity the key may see: [{entity, kind, counts, last, oldest}]; records a sample of each. */
export async function loadEntities() {
  let items;
  if (canListNamespace()) {
    const list = await api.stats();
    items = list.items.map((item) => ({ entity: item.entity, kind: item.kind, counts: item.counts ?? null, last: item.lastSequenceNumber }));
  } else {
    items = await Promise.all(
      (session.who?.entities ?? []).map(async (entity) => {
        const kind = kindOf(entity);
        if (can('manage')) {
          const info = await api.entity(entity);
          return { entity, kind, counts: info.counts ?? null, last: info.lastSequenceNumber };
        }
        const counts = kind !== 'topic' && can('listen') ? await api.counts(entity) : null;
        return { entity, kind, counts, last: null };
      }),
    );
  }
  const at = Date.now();
  await Promise.all(
    items.map(async (item) => {
      if (item.counts) record(entityLabel(item.entity), item.counts, item.last, at);
      item.oldest = await oldestAge(item.entity, item.counts).catch(() => null);
    }),
  );
  return items;
}

const columns = [
  ['active', 'Active'],
  ['locked', 'Locked'],
  ['scheduled', 'Scheduled'],
  ['deferred', 'Deferred'],
  ['deadLettered', 'Dead-lettered'],
];

function row(item) {
  const label = entityLabel(item.entity);
  const counts = item.counts;
  const { send, settle } = rates(label);
  const cells = [
    h('td', { class: 'name', 'data-label': 'Entity' }, h('a', { href: entityHash(item.entity) }, label), ' ', badge(item.kind, 'kind')),
  ];
  for (const [field, title] of columns) {
    const value = counts ? counts[field] : null;
    let content = number(value);
    if (field === 'deadLettered' && value > 0) {
      content = h('a', { href: entityHash(item.entity, 'dead-letters'), class: 'warn' }, `⚠ ${number(value)}`);
    }
    cells.push(h('td', { class: `n ${field}`, 'data-label': title }, content));
  }
  cells.push(h('td', { class: 'n oldest', 'data-label': 'Oldest' }, item.oldest === null || item.oldest === undefined ? '—' : duration(item.oldest)));
  cells.push(h('td', { class: 'n send-rate', 'data-label': 'Sent' }, rate(send)));
  cells.push(h('td', { class: 'n settle-rate', 'data-label': 'Settled' }, rate(settle)));
  cells.push(h('td', { class: 'chart-cell', 'data-label': 'Last 5 min' }, counts ? countsChart(label) : '—'));
  return h('tr', { 'data-entity': label, 'data-kind': item.kind }, cells);
}

/** Renders the page into `container`; returns the function that stops its refresh. */
export function renderEntities(container) {
  const body = h('tbody', {});
  const updated = h('span', { class: 'updated' }, 'loading…');
  replace(
    container,
    h('h1', {}, 'Entities'),
    h(
      'p',
      { class: 'hint' },
      'Refreshed every 2 s. Sent and settled (completed, expired or purged) are per second over the last 10 s. Chart: ',
      h('span', { class: 'legend active' }, '── active'),
      ' ',
      h('span', { class: 'legend dead' }, '- - dead-lettered'),
      '. ',
      updated,
    ),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'entities' },
        h(
          'thead',
          {},
          h('tr', {}, h('th', {}, 'Entity'), columns.map(([, title]) => h('th', { class: 'n' }, title)), h('th', { class: 'n' }, 'Oldest'),
            h('th', { class: 'n' }, 'Sent'), h('th', { class: 'n' }, 'Settled'), h('th', {}, 'Last 5 min')),
        ),
        body,
      ),
    ),
  );
  if (!canListNamespace() && !session.who?.scope) {
    replace(body, h('tr', {}, h('td', { colspan: 10 }, 'This key has no entity scope and no manage right: it cannot list entities.')));
    return () => {};
  }
  let stopped = false;
  let timer = null;
  const refresh = async () => {
    // A hidden tab asks nothing: the console polls only while someone may look at it.
    if (document.hidden) {
      timer = setTimeout(refresh, pollMs);
      return;
    }
    try {
      const items = await loadEntities();
      if (stopped) return;
      if (items.length === 0) {
        replace(body, h('tr', {}, h('td', { colspan: 10 }, 'No entities yet.')));
      } else {
        replace(body, items.map(row));
      }
      updated.textContent = `Updated ${new Date().toLocaleTimeString('en-GB')}.`;
    } catch (error) {
      if (!stopped) announce(`Cannot load the entities: ${error.message}`, true);
    }
    if (!stopped) timer = setTimeout(refresh, pollMs);
  };
  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
