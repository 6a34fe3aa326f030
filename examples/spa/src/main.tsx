import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { ApolloProvider } from '@apollo/client/react';
import { createClient } from './apollo';
import { App } from './App';
import { loadConfig } from './config';
import './style.css';

// Where the API lives is read at run time (see config.ts), so the same
// build can point at any gatehouse.
const root = createRoot(document.getElementById('root')!);
loadConfig()
  .then(({ graphqlURL }) => {
    root.render(
      <StrictMode>
        <ApolloProvider client={createClient(graphqlURL)}>
          <App graphqlURL={graphqlURL} />
        </ApolloProvider>
      </StrictMode>,
    );
  })
  .catch((err: unknown) => {
    root.render(<p role="alert">Cannot read config.json: {String(err)}</p>);
  });
