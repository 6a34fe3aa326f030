import { useState } from 'react';
import { useApolloClient, useMutation, useQuery } from '@apollo/client/react';
import { Activity } from './Activity';
import { DataEditor } from './DataEditor';
import { errorCode, errorMessage } from './errors';
import type { MeQuery as Me, SessionsQuery as Sessions } from './gql/graphql';
import { useLiveSession } from './live';
import { ActivityQuery, LogOutMutation, LogOutOthersMutation, MeQuery, RevokeSessionMutation, SessionsQuery } from './operations';
import { Passkeys } from './Passkeys';
import { TwoFactor } from './TwoFactor';

type Session = Sessions['sessions'][number];

const when = (t: string) => new Date(t).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/**
 * Account is the signed-in page: who I am, two-factor sign-in, passkeys, my
 * sessions, this session's data, the activity log. It follows the session's
 * live events while on screen (see live.ts).
 */
export function Account({ me }: { me: NonNullable<Me['me']> }) {
  const client = useApolloClient();
  useLiveSession();
  const { data, error, refetch, networkStatus } = useQuery(SessionsQuery, { notifyOnNetworkStatusChange: true });
  const [notice, setNotice] = useState<string | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const refetchSessions = { refetchQueries: [SessionsQuery, ActivityQuery], awaitRefetchQueries: true };
  const [revoke] = useMutation(RevokeSessionMutation, refetchSessions);
  const [logOutOthers] = useMutation(LogOutOthersMutation, refetchSessions);
  const [logOut] = useMutation(LogOutMutation);

  // run performs one action, reporting its outcome. An UNAUTHENTICATED
  // answer has already sent the app back to the login form (see apollo.ts).
  async function run(action: () => Promise<string | null>) {
    setNotice(null);
    setFailure(null);
    try {
      setNotice(await action());
    } catch (err) {
      if (errorCode(err) !== 'UNAUTHENTICATED') setFailure(errorMessage(err));
    }
  }

  const sessions = data?.sessions ?? [];
  return (
    <>
      <section className="card" aria-label="Account">
        <div className="row">
          <div>
            <h2>Signed in as <span data-testid="username">{me.username}</span></h2>
            <p className="muted">Account created {when(me.createdAt)}</p>
          </div>
          <button className="secondary" onClick={() => void run(async () => {
            await logOut();
            // The server has ended the session and expired the cookie. Forget
            // everything cached (clearStore refetches nothing, so the session
            // list does not ask again), then ask who we are: nobody.
            await client.clearStore();
            await client.refetchQueries({ include: [MeQuery] });
            return null;
          })}>Log out</button>
        </div>
      </section>

      <TwoFactor me={me} />

      <Passkeys />

      <section className="card" aria-label="Sessions">
        <div className="row">
          <h2>Sessions</h2>
          <div className="actions">
            <button className="secondary" disabled={networkStatus < 7}
              onClick={() => void run(async () => { await refetch(); return null; })}>Refresh</button>
            <button disabled={sessions.length < 2} onClick={() => void run(async () => {
              const res = await logOutOthers();
              const n = res.data?.deleteOtherSessions ?? 0;
              return `Logged out ${n} other session${n === 1 ? '' : 's'}.`;
            })}>Log out everywhere else</button>
          </div>
        </div>
        {notice && <p role="status" className="notice">{notice}</p>}
        {failure && <p role="alert" className="error">{failure}</p>}
        {error && errorCode(error) !== 'UNAUTHENTICATED' && <p role="alert" className="error">{errorMessage(error)}</p>}
        <table>
          <thead>
            <tr><th>Device</th><th>Address</th><th>Signed in</th><th>Last seen</th><th>Expires</th><th /></tr>
          </thead>
          <tbody>
            {sessions.map((s: Session) => (
              <tr key={s.id} data-session-id={s.id} className={s.current ? 'current' : undefined}>
                <td>
                  {s.current && <span className="badge">this device</span>}{' '}
                  <span className="agent" title={s.userAgent ?? ''}>{browserName(s.userAgent)}</span>
                  <span className="factors">{factorNames(s.factors)}</span>
                </td>
                <td>{s.ipAddress ?? '—'}</td>
                <td>{when(s.createdAt)}</td>
                <td>{when(s.lastSeenAt)}</td>
                <td>{when(s.expiresAt)}</td>
                <td>
                  {!s.current && (
                    <button className="danger" aria-label={`Revoke session ${s.id}`} onClick={() => void run(async () => {
                      const res = await revoke({ variables: { id: s.id } });
                      return res.data?.deleteSession ? 'Session revoked.' : 'That session had already ended.';
                    })}>Revoke</button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      {data?.session && <DataEditor session={data.session} />}

      <Activity />
    </>
  );
}

// browserName shortens a User-Agent to what a person recognises.
function browserName(ua: string | null): string {
  if (!ua) return 'unknown client';
  const browser = /(Edg|Firefox|HeadlessChrome|Chrome|Safari)\/(\d+)/.exec(ua);
  const os = ['Android', 'iPhone', 'iPad', 'Windows', 'Mac OS X', 'CrOS', 'Linux'].find((os) => ua.includes(os));
  return browser ? `${browser[1]} ${browser[2]}${os ? ` on ${os}` : ''}` : ua.slice(0, 40);
}

// factorNames says how a session signed in: "password + authenticator code".
function factorNames(factors: Session['factors']): string {
  const names = { PASSWORD: 'password', TOTP: 'authenticator code', RECOVERY_CODE: 'recovery code', PASSKEY: 'passkey' };
  return factors.length === 0 ? '' : `with ${factors.map((f) => names[f]).join(' + ')}`;
}
