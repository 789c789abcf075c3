// Messages: a page of peeked messages, and one message in full.

import { api, can } from './api.js';
import { announce, badge, bodyText, confirmAction, duration, facts, h, propertyText, replace, time } from './dom.js';

const stateLabels = {
  active: '● active',
  locked: '■ locked',
  scheduled: '◷ scheduled',
  deferred: '‖ deferred',
  deadLettered: '⚠ dead-lettered',
};

/** A message's state as a label with an icon, so that it reads without colour. */
export function stateBadge(state) {
  return badge(stateLabels[state] ?? state, `state-${state}`);
}

/** The first characters of a body, on one line. */
export function bodyPreview(message) {
  const { kind, text } = bodyText(message.message.body);
  const line = (kind === 'json' ? JSON.stringify(JSON.parse(text)) : text).replace(/\s+/g, ' ');
  return line.length > 80 ? `${line.slice(0, 80)}…` : line;
}

/** The whole message: its system fields, properties and body. */
export function messageDetail(received) {
  const message = received.message;
  const body = bodyText(message.body);
  const properties = Object.entries(message.applicationProperties ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return h(
    'article',
    { class: 'message-detail', 'data-sequence': received.sequenceNumber },
    h('h3', {}, `Message #${received.sequenceNumber} `, stateBadge(received.entity?.deadLetter ? 'deadLettered' : received.state)),
    facts([
      ['Sequence number', String(received.sequenceNumber)],
      ['Message id', message.messageId],
      ['Enqueued', time(received.enqueuedTime)],
      ['Scheduled for', message.scheduledEnqueueTime ? time(message.scheduledEnqueueTime) : '—'],
      ['Delivery count', String(received.deliveryCount)],
      ['Session', message.sessionId ?? '—'],
      ['Subject', message.subject ?? '—'],
      ['Content type', message.contentType ?? '—'],
      ['Correlation id', message.correlationId ?? '—'],
      ['Reply to', message.replyTo ?? '—'],
      ['Time to live', message.timeToLiveMs ? duration(message.timeToLiveMs) : '—'],
      ['Expires', received.expiresAt ? time(received.expiresAt) : '—'],
      ['Locked until', received.lockedUntil ? time(received.lockedUntil) : '—'],
      ['Dead-letter reason', received.deadLetterReason ?? '—'],
      ['Dead-letter description', received.deadLetterDescription ?? '—'],
    ]),
    h('h4', {}, 'Properties'),
    properties.length
      ? h('table', { class: 'properties' }, h('tbody', {}, properties.map(([name, value]) => h('tr', {}, h('th', {}, name), h('td', {}, propertyText(value))))))
      : h('p', { class: 'hint' }, 'No application properties.'),
    h('h4', {}, `Body (${body.kind === 'json' ? 'JSON, pretty-printed' : body.kind})`),
    h('pre', { class: `body ${body.kind}` }, body.text),
  );
}

/**
 * A table of messages; a click on a row shows the message in `detail`. `select` (a Set of sequence
 * numbers), when given, adds a checkbox per row.
 */
export function messageTable(messages, entity, detail, select) {
  const rows = messages.map((received) => {
    const show = async () => {
      try {
        const full = await api.message(entity, received.sequenceNumber);
        replace(detail, messageDetail(full));
        detail.scrollIntoView({ block: 'nearest' });
      } catch (error) {
        announce(`Cannot read message #${received.sequenceNumber}: ${error.message}`, true);
      }
    };
    const cells = [];
    if (select) {
      const box = h('input', { type: 'checkbox', class: 'pick', 'aria-label': `Select message ${received.sequenceNumber}` });
      box.checked = select.has(received.sequenceNumber);
      box.addEventListener('change', () => {
        if (box.checked) select.add(received.sequenceNumber);
        else select.delete(received.sequenceNumber);
        box.dispatchEvent(new CustomEvent('selection', { bubbles: true }));
      });
      cells.push(h('td', { class: 'pick-cell' }, box));
    }
    cells.push(
      h('td', { class: 'n seq', 'data-label': 'Seq' }, h('button', { type: 'button', class: 'link open', onclick: show }, `#${received.sequenceNumber}`)),
      // In a dead-letter queue every message is dead-lettered, whatever its state there.
      h('td', { 'data-label': 'State' }, stateBadge(entity.deadLetter ? 'deadLettered' : received.state)),
      h('td', { 'data-label': received.state === 'scheduled' ? 'Due' : 'Enqueued' }, time(received.enqueuedTime)),
      h('td', { class: 'n', 'data-label': 'Deliveries' }, String(received.deliveryCount)),
      h('td', { 'data-label': 'Subject' }, received.message.subject ?? ''),
      h('td', { 'data-label': received.deadLetterReason ? 'Reason' : 'Session' }, received.deadLetterReason ?? received.message.sessionId ?? ''),
      h('td', { class: 'preview', 'data-label': 'Body' }, bodyPreview(received)),
    );
    return h('tr', { 'data-sequence': received.sequenceNumber }, cells);
  });
  const dead = messages.some((m) => m.deadLetterReason);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'messages' },
      h(
        'thead',
        {},
        h('tr', {}, select ? h('th', {}, '') : null, h('th', { class: 'n' }, 'Seq'), h('th', {}, 'State'), h('th', {}, 'Enqueued'),
          h('th', { class: 'n' }, 'Deliveries'), h('th', {}, 'Subject'), h('th', {}, dead ? 'Reason' : 'Session'), h('th', {}, 'Body')),
      ),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: select ? 8 : 7 }, 'No messages.'))),
    ),
  );
}

/** The messages tab: pages of peeked messages, by sequence number. */
export function messagesPanel(entity) {
  const list = h('div', {});
  const detail = h('div', { class: 'detail' });
  const position = h('span', { class: 'hint' });
  const pages = [0];
  const pageSize = 50;
  let next = null;
  const load = async () => {
    try {
      const answer = await api.peek(entity, pages[pages.length - 1], pageSize);
      const messages = answer.messages;
      next = messages.length === pageSize ? messages[messages.length - 1].sequenceNumber + 1 : null;
      replace(list, messageTable(messages, entity, detail));
      position.textContent = `From sequence number ${pages[pages.length - 1]}: ${messages.length} message(s).`;
      previous.disabled = pages.length === 1;
      nextButton.disabled = next === null;
    } catch (error) {
      announce(`Cannot peek: ${error.message}`, true);
    }
  };
  const previous = h('button', { type: 'button', onclick: () => { pages.pop(); load(); } }, '← Previous');
  const nextButton = h('button', { type: 'button', onclick: () => { pages.push(next); load(); } }, 'Next →');
  const refresh = h('button', { type: 'button', onclick: load }, 'Refresh');
  load();
  return h('section', { class: 'panel', id: 'messages-panel' }, h('div', { class: 'toolbar' }, previous, nextButton, refresh, position), list, detail);
}

/** The scheduled tab: the scheduled messages (found by peeking), each with a Cancel button. */
export function scheduledPanel(entity) {
  const list = h('div', {});
  const detail = h('div', { class: 'detail' });
  const load = async () => {
    try {
      const scheduled = [];
      let from = 0;
      // Up to 20 pages of 500: the scheduled ones among the first 10,000 messages.
      for (let page = 0; page < 20; page++) {
        const answer = await api.peek(entity, from, 500);
        scheduled.push(...answer.messages.filter((m) => m.state === 'scheduled'));
        if (answer.messages.length < 500) break;
        from = answer.messages[answer.messages.length - 1].sequenceNumber + 1;
      }
      const table = messageTable(scheduled, entity, detail);
      if (can('send')) {
        table.querySelector('thead tr').append(h('th', {}, 'Cancel'));
        const rows = table.querySelectorAll('tbody tr[data-sequence]');
        rows.forEach((row, index) => {
          const received = scheduled[index];
          const cancel = async () => {
            const when = time(received.message.scheduledEnqueueTime);
            if (!(await confirmAction(`Cancel scheduled message #${received.sequenceNumber}?`, [`It was due at ${when}. It is deleted.`], 'Cancel message'))) return;
            try {
              await api.cancelScheduled(entity, [received.sequenceNumber]);
              announce(`Cancelled scheduled message #${received.sequenceNumber}.`);
              load();
            } catch (error) {
              announce(`Cannot cancel: ${error.message}`, true);
            }
          };
          row.append(h('td', {}, h('button', { type: 'button', class: 'danger cancel-scheduled', onclick: cancel }, '✕ Cancel')));
        });
      }
      replace(list, h('p', { class: 'hint' }, `${scheduled.length} scheduled message(s).`), table);
    } catch (error) {
      announce(`Cannot list the scheduled messages: ${error.message}`, true);
    }
  };
  load();
  return h('section', { class: 'panel', id: 'scheduled-panel' }, h('div', { class: 'toolbar' }, h('button', { type: 'button', onclick: load }, 'Refresh')), list, detail);
}

/** The sessions tab: each session's messages, lock and whether a dead letter parks it. */
export function sessionsPanel(entity) {
  const list = h('div', {});
  let after = null;
  const load = async (reset) => {
    if (reset) after = null;
    try {
      const answer = await api.sessions(entity, after, 100);
      const rows = answer.sessions.map((s) =>
        h(
          'tr',
          { 'data-session': s.sessionId },
          h('td', { 'data-label': 'Session' }, s.sessionId),
          h('td', { class: 'n', 'data-label': 'Messages' }, String(s.messageCount)),
          h('td', { 'data-label': 'Lock' }, s.isLocked ? badge(`■ locked until ${time(s.lockedUntil)}`, 'warn') : badge('○ free', 'ok')),
          h('td', { 'data-label': 'Parked' }, s.isParked ? badge('⚠ parked by a dead letter', 'bad') : badge('no', 'ok')),
          h('td', { class: 'n', 'data-label': 'State' }, s.stateSize ? `${s.stateSize} bytes` : 'none'),
        ),
      );
      after = answer.sessions.length ? answer.sessions[answer.sessions.length - 1].sessionId : null;
      more.disabled = answer.sessions.length < 100;
      replace(
        list,
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { class: 'sessions' },
            h('thead', {}, h('tr', {}, h('th', {}, 'Session'), h('th', { class: 'n' }, 'Messages'), h('th', {}, 'Lock'), h('th', {}, 'Parked'), h('th', { class: 'n' }, 'State'))),
            h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 5 }, 'No sessions.'))),
          ),
        ),
      );
    } catch (error) {
      announce(`Cannot list the sessions: ${error.message}`, true);
    }
  };
  const more = h('button', { type: 'button', onclick: () => load(false) }, 'Next →');
  load(true);
  return h('section', { class: 'panel', id: 'sessions-panel' }, h('div', { class: 'toolbar' }, h('button', { type: 'button', onclick: () => load(true) }, 'First'), more), list);
}
