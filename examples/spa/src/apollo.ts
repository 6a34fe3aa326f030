import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, makeVar } from '@apollo/client';
import { ErrorLink } from '@apollo/client/link/error';
import { errorCode, secondFactorRequired } from './errors';
import { MeQuery } from './operations';

/**
 * sessionEnded holds why the app is showing the login form after being
 * signed in (a revoked or expired session), or null.
 */
export const sessionEnded = makeVar<string | null>(null);

// The operations that sign in: their UNAUTHENTICATED is a refusal the form
// shows, not a session that ended.
const signIns = new Set(['LogIn', 'SignUp', 'BeginPasskeyLogin', 'FinishPasskeyLogin']);

/**
 * createClient returns the app's Apollo Client for the gatehouse API at uri.
 *
 * It authenticates with gatehouse's HttpOnly session cookie only:
 * credentials: 'include' makes the browser send and store the cookie on
 * these cross-origin requests, and no token is ever read or kept by
 * JavaScript. Every request is a POST with Content-Type: application/json
 * (HttpLink's default; useGETForQueries stays off and there is no
 * persisted-query link), which is preflighted by the browser and so passes
 * gatehouse's CSRF prevention.
 */
export function createClient(uri: string): ApolloClient {
  // Any operation answered UNAUTHENTICATED means the cookie no longer opens
  // a session (revoked on another device, expired, logged out): forget the
  // user, which puts the login form on screen. With
  // extensions.secondFactorRequired it opens a session that waits for its
  // second factor (this browser signed in again, in another tab): ask who
  // we are, which puts the second step on screen.
  const signedOut = new ErrorLink(({ error, operation }) => {
    // A refused code leaves the session waiting; SecondFactorForm says so.
    if (errorCode(error) !== 'UNAUTHENTICATED' || operation.operationName === 'VerifySecondFactor') return;
    if (secondFactorRequired(error)) {
      void operation.client.refetchQueries({ include: [MeQuery] });
      return;
    }
    if (!signIns.has(operation.operationName ?? '')) {
      sessionEnded('Your session has ended. Log in again.');
    }
    operation.client.cache.writeQuery({ query: MeQuery, data: { me: null, session: null } });
  });
  return new ApolloClient({
    link: ApolloLink.from([signedOut, new HttpLink({ uri, credentials: 'include' })]),
    cache: new InMemoryCache(),
  });
}
