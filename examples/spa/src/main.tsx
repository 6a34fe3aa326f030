import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { ApolloProvider } from '@apollo/client/react';
import { createClient } from './apollo';
import { App } from './App';
import './style.css';

// config.json is read at run time, so the same build can point at any
// gatehouse: { "graphqlURL": "https://auth.example.com/query" }.
const root = createRoot(document.getElementById('root')!);
fetch(new URL('config.json', document.baseURI))
  .then((res) => res.json() as Promise<{ graphqlURL: string }>)
  .then(({ graphqlURL }) => {
    root.render(
      <StrictMode>
        <ApolloProvider client={createClient(graphqlURL)}>
          <App />
        </ApolloProvider>
      </StrictMode>,
    );
  })
  .catch((err: unknown) => {
    root.render(<p role="alert">Cannot read config.json: {String(err)}</p>);
  });
