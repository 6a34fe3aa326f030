import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, makeVar } from '@apollo/client';
import { ErrorLink } from '@apollo/client/link/error';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition } from '@apollo/client/utilities';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
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
 *
 * Subscriptions go over a WebSocket to the same URL (ws:// or wss://, see
 * liveLink), the rest over HTTP.
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
    // A reason already given (a live event said why) stays.
    if (!signIns.has(operation.operationName ?? '') && sessionEnded() === null) {
      sessionEnded('Your session has ended. Log in again.');
    }
    operation.client.cache.writeQuery({ query: MeQuery, data: { me: null, session: null } });
  });
  const live = liveLink(uri);
  const client = new ApolloClient({
    link: ApolloLink.from([
      signedOut,
      ApolloLink.split(isSubscription, live.link, new HttpLink({ uri, credentials: 'include' })),
    ]),
    cache: new InMemoryCache({
      typePolicies: {
        Query: {
          fields: {
            // "Load more" (fetchMore with after) appends the older page; a
            // first page (after none: a refetch) replaces what was there.
            securityEvents: {
              keyArgs: false,
              merge(existing, incoming, { args }) {
                if (!args?.after || !existing) return incoming;
                return { ...incoming, edges: [...existing.edges, ...incoming.edges] };
              },
            },
          },
        },
      },
    }),
  });
  // Signing out (or a session that ended) clears the store: close the
  // socket, which belongs to that session, with it.
  client.onClearStore(async () => live.dispose());
  return client;
}

function isSubscription({ query }: ApolloLink.Operation): boolean {
  const def = getMainDefinition(query);
  return def.kind === 'OperationDefinition' && def.operation === 'subscription';
}

/**
 * liveLink sends subscriptions to gatehouse over a WebSocket with the
 * graphql-transport-ws protocol, at the API's URL with ws:// for http://
 * and wss:// for https://.
 *
 * The socket authenticates as HTTP does: the browser sends the session
 * cookie with the upgrade request (gatehouse takes upgrades from its
 * CORS_ORIGINS only), and connection_init carries no token. It opens
 * lazily, at the first subscription (only a signed-in page subscribes), and
 * closes with the last. dispose ends the current client, for good: the
 * next subscription opens a new one, so a socket never outlives the
 * session it signed in as. A socket refused with 4403 (no session) is not
 * retried; nor does a client that the app disposed when the server said
 * the session ended reconnect.
 */
function liveLink(httpURL: string): { link: ApolloLink; dispose: () => void } {
  const url = httpURL.replace(/^http/, 'ws');
  let ws: { client: WsClient; link: GraphQLWsLink } | null = null;
  const current = () => {
    if (!ws) {
      const client = createWsClient({
        url,
        lazy: true,
        shouldRetry: (e) => (e as { code?: number } | null)?.code !== 4403,
      });
      ws = { client, link: new GraphQLWsLink(client) };
    }
    return ws;
  };
  return {
    link: new ApolloLink((operation) => current().link.request(operation)),
    dispose() {
      void ws?.client.dispose();
      ws = null;
    },
  };
}
