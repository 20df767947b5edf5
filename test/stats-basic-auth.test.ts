import t from 'tap';
import { parseBasicAuth } from '../src/stats/auth.js';
import { ADMIN_STATES, adminStateError, isAdminState } from '../src/model/admin-state.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

t.test('parseBasicAuth: RFC 7617 credentials, or null', async (t) => {
  t.same(parseBasicAuth(`Basic ${b64('admin:s3cret pass')}`), { user: 'admin', pass: 's3cret pass' });
  t.same(parseBasicAuth(`basic ${b64('admin:a:b')}`), { user: 'admin', pass: 'a:b' }, 'scheme case-insensitive; the user ends at the first colon');
  t.same(parseBasicAuth(`Basic ${b64(':')}`), { user: '', pass: '' });
  t.same(parseBasicAuth(`Basic ${b64('zoë:pässword')}  `), { user: 'zoë', pass: 'pässword' }, 'UTF-8, trailing spaces');
  t.equal(parseBasicAuth(undefined), null, 'absent');
  t.equal(parseBasicAuth(`Bearer ${b64('admin:x')}`), null, 'another scheme');
  t.equal(parseBasicAuth(`Basic ${b64('admin')}`), null, 'no colon');
  t.equal(parseBasicAuth('Basic'), null, 'no token');
  t.equal(parseBasicAuth('Basic a b'), null, 'two tokens');
});

t.test('admin states: one list, one check, one message', async (t) => {
  t.same(ADMIN_STATES, ['ready', 'drain', 'maint']);
  for (const s of ADMIN_STATES) t.ok(isAdminState(s), s);
  for (const v of ['READY', 'up', '', null, undefined, 1, {}]) t.notOk(isAdminState(v), JSON.stringify(v) ?? 'undefined');
  t.equal(adminStateError('off'), 'state: expected one of ready, drain, maint, got "off"');
});
