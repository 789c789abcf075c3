// An entity's page: live counts and chart, options (editable with the manage right), messages,
// scheduled messages, sessions, and a purge.

import { api, can, entityHash, entityLabel, kindOf } from './api.js';
import { announce, badge, confirmAction, duration, h, number, rate, replace } from './dom.js';
import { countsChart, loadEntities, pollMs, rates } from './entities.js';
import { messagesPanel, scheduledPanel, sessionsPanel } from './messages.js';

/** The options the PATCH route changes, with their fields in seconds (the wire is in milliseconds). */
const editable = [
  { field: 'lockDurationMs', label: 'Lock duration (s)', seconds: true, min: 1, required: true },
  { field: 'maxDeliveryCount', label: 'Max delivery count', seconds: false, min: 1, required: true },
  { field: 'defaultTimeToLiveMs', label: 'Default time to live (s, empty for none)', seconds: true, min: 1, required: false },
  { field: 'duplicateDetectionWindowMs', label: 'Duplicate detection window (s, empty for off)', seconds: true, min: 1, required: false },
];

function optionsForm(entity, info, reload) {
  const options = info.options ?? {};
  const inputs = {};
  const fields = editable.map((option) => {
    const id = `option-${option.field}`;
    const value = options[option.field];
    const input = h('input', { id, name: option.field, type: 'number', min: option.min, step: option.seconds ? 'any' : 1, required: option.required });
    if (value !== undefined && value !== null) input.value = String(option.seconds ? value / 1000 : value);
    input.disabled = !can('manage');
    inputs[option.field] = input;
    return h('div', { class: 'field' }, h('label', { for: id }, option.label), input);
  });
  const fixed = [
    ['Requires sessions', options.requiresSession ? 'yes' : 'no'],
    ['Dead-letter on expiration', options.deadLetterOnExpiration ? 'yes' : 'no'],
    ['Park a session on a dead letter', options.parkSessionOnDeadLetter ? 'yes' : 'no'],
    ['Max message size', options.maxMessageSize ? `${number(options.maxMessageSize)} bytes` : '—'],
  ];
  const save = async (event) => {
    event.preventDefault();
    const change = {};
    for (const option of editable) {
      const text = inputs[option.field].value.trim();
      const number = text === '' ? 0 : Number(text);
      if (!Number.isFinite(number) || number < 0) {
        announce(`${option.label}: not a valid number`, true);
        return;
      }
      change[option.field] = option.seconds ? Math.round(number * 1000) : Math.round(number);
    }
    try {
      await api.updateOptions(entity, change);
      announce('Options saved.');
      reload();
    } catch (error) {
      announce(`Cannot save the options: ${error.message}`, true);
    }
  };
  return h(
    'form',
    { class: 'options', id: 'options-form', onsubmit: save },
    h('h2', {}, 'Options'),
    fields,
    h('dl', { class: 'facts' }, fixed.map(([label, value]) => [h('dt', {}, label), h('dd', {}, value)])),
    can('manage') ? h('button', { type: 'submit' }, 'Save options') : h('p', { class: 'hint' }, 'Changing options needs the manage right.'),
  );
}

function countsLine(item) {
  const label = entityLabel(item.entity);
  const counts = item.counts;
  if (!counts) return h('p', { class: 'hint' }, 'A topic keeps no messages: its subscriptions do.');
  const { send, settle } = rates(label);
  return h(
    'div',
    { class: 'live' },
    h(
      'dl',
      { class: 'counts' },
      [
        ['Active', counts.active, 'active'],
        ['Locked', counts.locked, 'locked'],
        ['Scheduled', counts.scheduled, 'scheduled'],
        ['Deferred', counts.deferred, 'deferred'],
        ['Dead-lettered', counts.deadLettered, 'deadLettered'],
      ].map(([title, value, field]) => h('div', { class: `count ${field}` }, h('dt', {}, title), h('dd', {}, number(value)))),
      h('div', { class: 'count' }, h('dt', {}, 'Oldest'), h('dd', {}, item.oldest === null || item.oldest === undefined ? '—' : duration(item.oldest))),
      h('div', { class: 'count' }, h('dt', {}, 'Sent'), h('dd', {}, rate(send))),
      h('div', { class: 'count' }, h('dt', {}, 'Settled'), h('dd', {}, rate(settle))),
    ),
    countsChart(label, { width: 320, height: 60 }),
  );
}

/** Renders the page of `entity` into `container`; returns the function that stops its refresh. */
export function renderEntity(container, entity) {
  const kind = kindOf(entity);
  const label = entityLabel(entity);
  const live = h('div', {}, 'loading…');
  const options = h('div', {});
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  const panel = h('div', {});
  const actions = h('div', { class: 'toolbar' });
  replace(
    container,
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, '← Entities')),
    h('h1', {}, label, ' ', badge(kind, 'kind')),
    live,
    actions,
    tabs,
    panel,
    options,
  );

  const reloadOptions = async () => {
    if (!can('manage')) return;
    try {
      const info = await api.entity(entity);
      replace(options, optionsForm(entity, info, reloadOptions));
      // Sessions are listed only where the entity has them (known with the manage right).
      if (info.options?.requiresSession === false) tabs.querySelector('[data-tab=sessions]')?.remove();
    } catch (error) {
      announce(`Cannot read the options: ${error.message}`, true);
    }
  };
  reloadOptions();

  if (kind === 'topic' && can('manage')) {
    const subscriptions = h('div', {});
    panel.append(h('h2', {}, 'Subscriptions'), subscriptions);
    api.subscriptions(entity.topic).then(
      (list) => replace(subscriptions, list.items.length
        ? h('ul', { class: 'subscriptions' }, list.items.map((item) => h('li', {}, h('a', { href: entityHash(item.entity) }, entityLabel(item.entity)))))
        : h('p', { class: 'hint' }, 'No subscriptions.')),
      (error) => announce(`Cannot list the subscriptions: ${error.message}`, true),
    );
  }

  if (kind !== 'topic') {
    if (can('manage')) {
      const purge = async () => {
        const ok = await confirmAction(`Purge ${label}?`, ['Every active message is deleted. Locked, scheduled, deferred and dead-lettered messages stay.'], 'Purge');
        if (!ok) return;
        try {
          const answer = await api.purge(entity);
          announce(`Purged ${answer.purged} message(s) from ${label}.`);
        } catch (error) {
          announce(`Cannot purge: ${error.message}`, true);
        }
      };
      actions.append(h('button', { type: 'button', class: 'danger', id: 'purge', onclick: purge }, '✕ Purge active messages'));
    }
    if (can('listen')) actions.append(h('a', { class: 'button', href: entityHash(entity, 'dead-letters') }, '⚠ Dead letters'));
    const views = [];
    if (can('listen')) {
      views.push(['messages', 'Messages', () => messagesPanel(entity)]);
      views.push(['scheduled', 'Scheduled', () => scheduledPanel(entity)]);
      views.push(['sessions', 'Sessions', () => sessionsPanel(entity)]);
    }
    const show = (name) => {
      for (const button of tabs.children) button.setAttribute('aria-selected', String(button.dataset.tab === name));
      const view = views.find(([key]) => key === name);
      if (view) replace(panel, view[2]());
    };
    for (const [name, title] of views) {
      tabs.append(h('button', { type: 'button', role: 'tab', 'data-tab': name, id: `tab-${name}`, onclick: () => show(name) }, title));
    }
    if (views.length) show('messages');
    else replace(panel, h('p', { class: 'hint' }, 'Reading messages needs the listen right.'));
  }

  let stopped = false;
  let timer = null;
  const refresh = async () => {
    if (document.hidden) {
      timer = setTimeout(refresh, pollMs);
      return;
    }
    try {
      const items = await loadEntities();
      const item = items.find((candidate) => entityLabel(candidate.entity) === label);
      if (!stopped) replace(live, item ? countsLine(item) : h('p', { class: 'error' }, 'This entity does not exist, or the key cannot see it.'));
    } catch (error) {
      if (!stopped) announce(`Cannot refresh: ${error.message}`, true);
    }
    if (!stopped) timer = setTimeout(refresh, pollMs);
  };
  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
