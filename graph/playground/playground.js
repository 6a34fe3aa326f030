// The gatehouse playground: GraphiQL (with React, loaded before this file
// from this server) against /query. Requests carry the session cookie
// (same origin), so after a register or login mutation here, every query is
// the signed-in user's. gatehouse has no subscriptions, so no WebSocket.
(function () {
  'use strict';

  // GraphiQL's dialogs add a <style> (react-remove-scroll) that the page's
  // CSP allows by nonce: the bundle reads it from __webpack_nonce__.
  window.__webpack_nonce__ = document.currentScript.nonce;

  const defaultQuery = `# Welcome to the gatehouse playground.
#
# Sign up (or log in) here: the session cookie then signs in every request
# from this page. Run an operation with Ctrl-Enter or the ▶ button; the
# Docs button lists the whole schema.
#
# mutation {
#   register(username: "alice", password: "correct horse battery") {
#     session { id }
#   }
# }

query {
  me {
    username
  }
}
`;

  const fetcher = GraphiQL.createFetcher({
    url: new URL('/query', location.href).href,
    fetch: (url, init) => fetch(url, { ...init, credentials: 'same-origin' }),
  });

  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultQuery,
      isHeadersEditorEnabled: true,
      inputValueDeprecation: true,
    }),
  );
})();
