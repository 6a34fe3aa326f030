import { useEffect, useRef } from 'react';
import { useApolloClient, useSubscription } from '@apollo/client/react';
import { sessionEnded } from './apollo';
import type { SessionEventType } from './gql/graphql';
import { ActivityQuery, MeQuery, SessionEventsSubscription, SessionsQuery } from './operations';

// Why the login form is back, for the events that end this session.
const endings: Partial<Record<SessionEventType, string>> = {
  REVOKED: 'This session was signed out from another device.',
  EXPIRED: 'Your session expired.',
  PASSWORD_CHANGED: 'Your password was changed.',
};

/**
 * useLiveSession keeps the signed-in page up to date with gatehouse's
 * sessionEvents while it is on screen. An event that ends this session
 * puts the login form back at once, saying why, and then forgets
 * everything cached (which also closes the socket, see apollo.ts); another
 * session
 * signing in refreshes the sessions list and the activity log; data saved
 * by another tab of this session is read again.
 */
export function useLiveSession() {
  const client = useApolloClient();
  const ended = useRef(false);
  // The cache is cleared once the signed-in page is gone: clearing it
  // while the page's queries still watch it would send them again.
  useEffect(() => () => {
    if (ended.current) void client.clearStore();
  }, [client]);
  useSubscription(SessionEventsSubscription, {
    ignoreResults: true,
    onData: ({ data }) => {
      const type = data.data?.sessionEvents.type;
      if (type === undefined) return;
      const ending = endings[type];
      if (ending) {
        ended.current = true;
        sessionEnded(ending);
        // No one is signed in: App shows the login form. Only me changes,
        // so the page's other queries, on their way out, ask nothing.
        client.cache.modify({ fields: { me: () => null } });
      } else if (type === 'SIGNED_IN') {
        void client.refetchQueries({ include: [SessionsQuery, ActivityQuery] });
      } else if (type === 'DATA_UPDATED') {
        void client.refetchQueries({ include: [SessionsQuery] });
      }
    },
    // A socket refused (the cookie opens no session any more): ask who we
    // are; an UNAUTHENTICATED answer puts the login form back. Not after an
    // ending event, whose socket the app closed itself.
    onError: () => {
      if (sessionEnded() === null) void client.refetchQueries({ include: [MeQuery] });
    },
  });
}
