// Dead letters: grouped by reason and subject, searched by reason, subject, body text, property and
// time; a selection (some, or all that match) resubmitted, moved or purged by a bulk job. A job
// freezes its selection on the server and survives restarts; the jobs bar shows every running job,
// so that its progress is back after a page reload.

import { api, can, deadLetterQueue, entityHash, entityLabel, kindOf, plain, session } from './api.js';
import { announce, confirmAction, h, number, replace, time } from './dom.js';
import { messageTable } from './messages.js';

// --- Bulk jobs --------------------------------------------------------------------------------

/** Jobs shown in the jobs bar, by id. */
const shownJobs = new Map();
let jobTimer = null;

function jobLine(job) {
  const target = job.target ? ` → ${entityLabel(job.target)}` : '';
  const icons = { running: '◔', completed: '✔', cancelled: '✕', failed: '⚠' };
  const bar = h('progress', { max: Math.max(job.total, 1), value: job.processed, 'aria-label': `job ${job.id} progress` });
  const text = `${icons[job.state] ?? ''} ${job.action} ${entityLabel(job.entity)}${target}: ${number(job.processed)} of ${number(job.total)} `
    + `(applied ${number(job.applied)}, not found ${number(job.notFound)}, failed ${number(job.failed)}) — ${job.state}`
    + (job.failure ? `: ${job.failure}` : '');
  const children = [bar, h('span', { class: 'job-text' }, text)];
  if (job.state === 'running' && can('manage')) {
    children.push(
      h('button', {
        type: 'button',
        class: 'small',
        onclick: async () => {
          try {
            await api.cancelBulkJob(job.id);
          } catch (error) {
            announce(`Cannot cancel the job: ${error.message}`, true);
          }
        },
      }, 'Cancel job'),
    );
  } else {
    const dismiss = () => {
      shownJobs.delete(job.id);
      sessionStorage.setItem(dismissedName, JSON.stringify([...dismissedJobs(), job.id]));
      drawJobs();
    };
    children.push(h('button', { type: 'button', class: 'small dismiss', onclick: dismiss }, 'Dismiss'));
  }
  return h('li', { class: `job job-${job.state}`, 'data-job': job.id, 'data-state': job.state }, children);
}

function drawJobs() {
  const bar = document.getElementById('jobs');
  const jobs = [...shownJobs.values()];
  bar.hidden = jobs.length === 0;
  replace(bar, jobs.length ? [h('h2', {}, 'Bulk jobs'), h('ul', {}, jobs.map(jobLine))] : []);
}

async function pollJobs() {
  clearTimeout(jobTimer);
  const running = [...shownJobs.values()].filter((job) => job.state === 'running');
  await Promise.all(
    running.map(async (job) => {
      try {
        const fresh = await api.bulkJob(job.id);
        shownJobs.set(job.id, fresh);
        if (fresh.state !== 'running') window.dispatchEvent(new CustomEvent('herald-job-finished', { detail: fresh }));
      } catch (error) {
        shownJobs.set(job.id, { ...job, state: 'failed', failure: error.message });
      }
    }),
  );
  drawJobs();
  if ([...shownJobs.values()].some((job) => job.state === 'running')) jobTimer = setTimeout(pollJobs, 500);
}

/** Empties the jobs bar (on sign-out). */
export function clearJobs() {
  clearTimeout(jobTimer);
  shownJobs.clear();
  drawJobs();
}

/** Shows `job` in the jobs bar and follows it until it ends. */
export function trackJob(job) {
  shownJobs.set(job.id, job);
  drawJobs();
  pollJobs();
}

/** Jobs that ended this long ago are still shown after a reload, so that their outcome is seen. */
const recentMs = 10 * 60 * 1000;
const dismissedName = 'herald.dismissedJobs';

function dismissedJobs() {
  try {
    return new Set(JSON.parse(sessionStorage.getItem(dismissedName) ?? '[]'));
  } catch {
    return new Set();
  }
}

/** Finds the running jobs and those that ended recently (after a reload) and shows their progress. */
export async function resumeJobs() {
  if (!can('manage')) return;
  try {
    const answer = await api.bulkJobs();
    const dismissed = dismissedJobs();
    for (const job of answer.jobs) {
      if (job.state === 'running' || (Date.now() - job.updatedAt < recentMs && !dismissed.has(job.id))) shownJobs.set(job.id, job);
    }
    drawJobs();
    pollJobs();
  } catch (error) {
    announce(`Cannot list the bulk jobs: ${error.message}`, true);
  }
}

// --- The page ----------------------------------------------------------------------------------

/** The filter of the search form; null when it sets nothing. */
function readFilter(form) {
  const value = (name) => form.elements[name].value.trim();
  const filter = {};
  if (value('reason')) filter.reason = value('reason');
  if (value('subject')) filter.subject = value('subject');
  if (value('bodyContains')) filter.bodyContains = value('bodyContains');
  if (value('propertyName')) filter.properties = { [value('propertyName')]: { string: value('propertyValue') } };
  // The page shows times in UTC, so the form's times are UTC too.
  if (value('enqueuedFrom')) filter.enqueuedFrom = new Date(`${value('enqueuedFrom')}Z`).getTime();
  if (value('enqueuedBefore')) filter.enqueuedBefore = new Date(`${value('enqueuedBefore')}Z`).getTime();
  for (const key of ['enqueuedFrom', 'enqueuedBefore']) {
    if (key in filter && !Number.isFinite(filter[key])) delete filter[key];
  }
  return Object.keys(filter).length ? filter : null;
}

function field(name, label, type = 'text') {
  return h('div', { class: 'field' }, h('label', { for: `filter-${name}` }, label), h('input', { id: `filter-${name}`, name, type, autocomplete: 'off' }));
}

function groupList(title, groups, onPick) {
  return h(
    'div',
    { class: 'groups' },
    h('h3', {}, title),
    groups.length
      ? h('ul', {}, groups.map((group) => h('li', {},
        group.value === null || group.value === undefined
          ? h('span', {}, `(none): ${number(group.count)}`)
          : h('button', { type: 'button', class: 'link group', 'data-value': group.value, onclick: () => onPick(group.value) }, `${group.value}: ${number(group.count)}`))))
      : h('p', { class: 'hint' }, 'None.'),
  );
}

/** Renders the dead letters of the queue or subscription `entity`; returns its cleanup. */
export function renderDeadLetters(container, entity) {
  entity = plain(entity);
  const label = entityLabel(entity);
  const summary = h('div', { class: 'summary' }, 'loading…');
  const results = h('div', {});
  const detail = h('div', { class: 'detail' });
  const selectionText = h('span', { class: 'selection-text' }, 'Nothing selected.');
  const selected = new Set();
  let allMatching = false;
  let matchingTotal = 0;
  let pages = [0];
  let next = null;
  let filter = null;

  const form = h(
    'form',
    { class: 'search', id: 'dead-letter-search' },
    field('reason', 'Reason'),
    field('subject', 'Subject'),
    field('bodyContains', 'Body contains'),
    field('propertyName', 'Property name'),
    field('propertyValue', 'Property value (text)'),
    field('enqueuedFrom', 'Enqueued from (UTC)', 'datetime-local'),
    field('enqueuedBefore', 'Enqueued before (UTC)', 'datetime-local'),
    h('div', { class: 'toolbar' }, h('button', { type: 'submit' }, 'Search'), h('button', { type: 'reset' }, 'Clear')),
  );

  const updateSelection = () => {
    selectionText.textContent = allMatching
      ? `All ${number(matchingTotal)} matching selected.`
      : selected.size ? `${number(selected.size)} selected.` : 'Nothing selected.';
    for (const button of actionButtons) button.disabled = !allMatching && selected.size === 0;
  };

  // Each search has a number; an answer that arrives after a newer search started is dropped.
  let generation = 0;
  const loadPage = async (mine = generation) => {
    try {
      const answer = await api.searchDeadLetters(deadLetterQueue(entity), filter, pages[pages.length - 1], 100);
      if (mine !== generation) return;
      next = answer.nextSequenceNumber ?? null;
      const table = messageTable(answer.messages, deadLetterQueue(entity), detail, selected);
      table.addEventListener('selection', () => { allMatching = false; updateSelection(); });
      replace(results, table);
      previousButton.disabled = pages.length === 1;
      nextButton.disabled = next === null;
    } catch (error) {
      announce(`Cannot search the dead letters: ${error.message}`, true);
    }
  };

  const search = async () => {
    const mine = ++generation;
    filter = readFilter(form);
    pages = [0];
    selected.clear();
    allMatching = false;
    try {
      const [all, matching] = await Promise.all([api.deadLetterSummary(entity), filter ? api.deadLetterSummary(entity, filter) : null]);
      if (mine !== generation) return;
      matchingTotal = (matching ?? all).total;
      // A group's value replaces the search (its fields emptied without a reset, which searches too).
      const pick = (name, value) => {
        for (const element of form.elements) if (element.name) element.value = element.name === name ? value : '';
        search();
      };
      const pickReason = (reason) => pick('reason', reason);
      const pickSubject = (subject) => pick('subject', subject);
      replace(
        summary,
        h('p', { class: 'totals' }, `${number(all.total)} dead letter(s)`,
          all.oldestEnqueuedTime ? `, enqueued ${time(all.oldestEnqueuedTime)} to ${time(all.newestEnqueuedTime)}` : '',
          filter ? h('strong', { class: 'matching' }, ` — ${number(matchingTotal)} match the search`) : ''),
        h('div', { class: 'group-lists' }, groupList('By reason', all.reasons, pickReason), groupList('By subject', all.subjects, pickSubject)),
      );
    } catch (error) {
      announce(`Cannot summarize the dead letters: ${error.message}`, true);
    }
    updateSelection();
    await loadPage(mine);
  };

  form.addEventListener('submit', (event) => { event.preventDefault(); search(); });
  form.addEventListener('reset', () => setTimeout(search, 0));

  const previousButton = h('button', { type: 'button', onclick: () => { pages.pop(); loadPage(generation); } }, '← Previous');
  const nextButton = h('button', { type: 'button', onclick: () => { pages.push(next); loadPage(generation); } }, 'Next →');
  const selectPage = () => {
    results.querySelectorAll('input.pick').forEach((box) => { box.checked = true; selected.add(Number(box.closest('tr').dataset.sequence)); });
    allMatching = false;
    updateSelection();
  };
  const selectAll = () => { allMatching = matchingTotal > 0; updateSelection(); };
  const clearSelection = () => {
    selected.clear();
    allMatching = false;
    results.querySelectorAll('input.pick').forEach((box) => { box.checked = false; });
    updateSelection();
  };

  const targetInput = h('select', { id: 'move-target', 'aria-label': 'Move to' });
  const start = async (action) => {
    const count = allMatching ? matchingTotal : selected.size;
    const request = { entity, action };
    if (allMatching) {
      if (filter) request.filter = filter;
    } else {
      request.sequenceNumbers = [...selected].sort((a, b) => a - b);
    }
    let verb = action === 'resubmit' ? `Resubmit ${number(count)} dead letter(s) to ${label}?` : `Purge ${number(count)} dead letter(s) of ${label}?`;
    if (action === 'move') {
      if (!targetInput.value) { announce('Choose where to move them.', true); return; }
      request.target = JSON.parse(targetInput.value);
      verb = `Move ${number(count)} dead letter(s) of ${label} to ${entityLabel(request.target)}?`;
    }
    const details = [
      allMatching ? 'The selection is every dead letter that matches now; it is frozen when the job starts.' : 'The selection is the dead letters checked.',
      action === 'purge' ? 'They are deleted for good.' : 'Each is sent once; the job resumes after a restart.',
    ];
    if (!(await confirmAction(verb, details, action === 'purge' ? 'Purge' : action === 'move' ? 'Move' : 'Resubmit'))) return;
    try {
      const job = await api.startBulkJob(request);
      trackJob(job);
      clearSelection();
    } catch (error) {
      announce(`Cannot start the job: ${error.message}`, true);
    }
  };
  const actionButtons = [
    h('button', { type: 'button', id: 'bulk-resubmit', onclick: () => start('resubmit') }, '↻ Resubmit'),
    h('button', { type: 'button', id: 'bulk-move', onclick: () => start('move') }, '→ Move'),
    h('button', { type: 'button', id: 'bulk-purge', class: 'danger', onclick: () => start('purge') }, '✕ Purge'),
  ];

  const onJobFinished = (event) => {
    if (entityLabel(event.detail.entity) === label) search();
  };
  window.addEventListener('herald-job-finished', onJobFinished);

  replace(
    container,
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, '← Entities'), ' · ', h('a', { href: entityHash(entity) }, label)),
    h('h1', {}, `Dead letters of ${label}`),
    summary,
    form,
    can('manage')
      ? h('div', { class: 'toolbar selection' }, h('button', { type: 'button', id: 'select-page', onclick: selectPage }, 'Select page'),
        h('button', { type: 'button', id: 'select-all', onclick: selectAll }, 'Select all matching'),
        h('button', { type: 'button', onclick: clearSelection }, 'Clear'), selectionText)
      : h('p', { class: 'hint' }, 'Bulk actions need the manage right.'),
    can('manage') ? h('div', { class: 'toolbar actions' }, actionButtons[0], actionButtons[2], h('span', { class: 'move' }, actionButtons[1], targetInput)) : null,
    h('div', { class: 'toolbar' }, previousButton, nextButton),
    results,
    detail,
  );
  fillTargets(targetInput, entity);
  search();
  return () => window.removeEventListener('herald-job-finished', onJobFinished);
}

/** The queues and topics a move may go to (those the key sees, but the entity itself). */
async function fillTargets(select, entity) {
  const choices = [];
  try {
    if (can('manage') && !session.who?.scope) {
      const list = await api.stats();
      for (const item of list.items) if (item.kind !== 'subscription') choices.push(item.entity);
    } else {
      for (const candidate of session.who?.entities ?? []) if (kindOf(candidate) !== 'subscription') choices.push(candidate);
    }
  } catch {
    // No choices: the move stays unavailable.
  }
  const own = entityLabel(entity);
  replace(select, h('option', { value: '' }, 'Move to…'),
    choices.filter((choice) => entityLabel(choice) !== own).map((choice) => h('option', { value: JSON.stringify(choice) }, `${kindOf(choice)} ${entityLabel(choice)}`)));
}
