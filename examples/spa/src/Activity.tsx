import { useState } from 'react';
import { useQuery } from '@apollo/client/react';
import { errorCode, errorMessage } from './errors';
import type { SecurityEventType } from './gql/graphql';
import { ActivityQuery } from './operations';

// What each event type says, in words.
const words: Record<SecurityEventType, string> = {
  SIGNED_IN: 'Signed in',
  SIGNED_OUT: 'Signed out',
  LOGIN_FAILED: 'Failed sign-in',
  THROTTLED: 'Sign-ins locked after too many failures',
  SESSION_REVOKED: 'Session revoked',
  OTHER_SESSIONS_REVOKED: 'Signed out everywhere else',
  SESSION_EXPIRED: 'Session expired',
  PASSWORD_CHANGED: 'Password changed',
  SECOND_FACTOR_ENABLED: 'Two-factor sign-in turned on',
  SECOND_FACTOR_DISABLED: 'Two-factor sign-in turned off',
  PASSKEY_ADDED: 'Passkey added',
  PASSKEY_REMOVED: 'Passkey removed',
};

const when = (t: string) => new Date(t).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/**
 * Activity lists the account's security log (securityEvents), newest
 * first, a page at a time: "Load more" fetches the page after the last
 * one's endCursor, which the cache appends (see apollo.ts).
 */
export function Activity() {
  const { data, error, fetchMore } = useQuery(ActivityQuery, { variables: { first: 20 } });
  const [more, setMore] = useState<{ loading: boolean; failure: string | null }>({ loading: false, failure: null });
  const events = data?.securityEvents.edges ?? [];
  const page = data?.securityEvents.pageInfo;

  async function loadMore() {
    setMore({ loading: true, failure: null });
    try {
      await fetchMore({ variables: { after: page?.endCursor } });
      setMore({ loading: false, failure: null });
    } catch (err) {
      setMore({ loading: false, failure: errorCode(err) === 'UNAUTHENTICATED' ? null : errorMessage(err) });
    }
  }

  return (
    <section className="card activity" aria-label="Activity">
      <h2>Activity</h2>
      {error && errorCode(error) !== 'UNAUTHENTICATED' && <p role="alert" className="error">{errorMessage(error)}</p>}
      {data && events.length === 0 && <p className="muted">No activity yet.</p>}
      {events.length > 0 && (
        <table>
          <thead>
            <tr><th>What</th><th>When</th><th>Address</th><th>Device</th></tr>
          </thead>
          <tbody>
            {events.map(({ node: e }) => (
              <tr key={e.id} data-event-id={e.id} data-event-type={e.type}>
                <td>
                  {words[e.type] ?? e.type}
                  {e.sessionId && e.sessionId === data?.session?.id && <> <span className="badge">this session</span></>}
                </td>
                <td>{when(e.at)}</td>
                <td>{e.ipAddress ?? '—'}</td>
                <td className="agent" title={e.userAgent ?? ''}>{e.userAgent ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {more.failure && <p role="alert" className="error">{more.failure}</p>}
      {page?.hasNextPage && (
        <button className="secondary" disabled={more.loading} onClick={() => void loadMore()}>Load more</button>
      )}
    </section>
  );
}
