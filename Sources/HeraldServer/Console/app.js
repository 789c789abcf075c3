// The console's entry: signs in with an access key, then shows the page the address names.

import { api, ApiError, entityFromParts, session, storeKey, storedKey } from './api.js';
import { clearJobs, renderDeadLetters, resumeJobs } from './deadletters.js';
import { announce, h, replace } from './dom.js';
import { renderEntities } from './entities.js';
import { renderEntity } from './entity.js';

const view = document.getElementById('view');
const signIn = document.getElementById('sign-in');
let stopView = () => {};

function describe(who) {
  if (!who.keysRequired) return 'No keys: this server checks none (loopback only)';
  const scope = who.scope ? `limited to ${who.scope}` : 'namespace';
  return `${who.name} (${who.rights.join(', ')}; ${scope})`;
}

function route() {
  stopView();
  stopView = () => {};
  if (!session.who) return;
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  const [page, ...rest] = parts;
  if (page === 'entity' || page === 'dead-letters') {
    const entity = entityFromParts(rest);
    if (entity) {
      stopView = page === 'entity' ? renderEntity(view, entity) : renderDeadLetters(view, entity);
      return;
    }
    replace(view, h('p', { class: 'error' }, 'No such page.'), h('a', { href: '#/' }, '← Entities'));
    return;
  }
  stopView = renderEntities(view);
}

function showSignIn(message) {
  session.who = null;
  stopView();
  clearJobs();
  replace(view);
  signIn.hidden = false;
  document.getElementById('sign-out').hidden = true;
  document.getElementById('who').textContent = '';
  document.getElementById('sign-in-error').textContent = message ?? '';
  document.getElementById('key').focus();
}

/** Asks the server who the stored key is; shows the sign-in form when there is none or it fails. */
async function start() {
  try {
    session.who = await api.whoAmI();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      const hadKey = Boolean(storedKey());
      storeKey(null);
      showSignIn(hadKey ? 'The key was refused: it is not valid, or was revoked.' : '');
    } else {
      showSignIn(`Cannot reach the server: ${error.message}`);
    }
    return;
  }
  signIn.hidden = true;
  document.getElementById('who').textContent = describe(session.who);
  document.getElementById('sign-out').hidden = !session.who.keysRequired;
  route();
  resumeJobs();
}

document.getElementById('sign-in-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = document.getElementById('key');
  const key = input.value.trim();
  input.value = '';
  storeKey(key);
  start();
});

document.getElementById('sign-out').addEventListener('click', () => {
  storeKey(null);
  announce('Signed out.');
  showSignIn();
});

window.addEventListener('herald-unauthorized', () => {
  if (!session.who) return;
  storeKey(null);
  showSignIn('The key was refused: it is not valid, or was revoked.');
});

window.addEventListener('hashchange', route);
start();
