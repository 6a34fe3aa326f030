import { useQuery } from '@apollo/client/react';
import { Account } from './Account';
import { errorMessage } from './errors';
import { LoginForm } from './LoginForm';
import { MeQuery } from './operations';

/**
 * App shows the login form to a visitor and the account page to a user of
 * the gatehouse at graphqlURL.
 */
export function App({ graphqlURL }: { graphqlURL: string }) {
  const { data, error, loading, refetch } = useQuery(MeQuery);
  let page;
  if (loading) {
    page = <p>Loading…</p>;
  } else if (data?.me) {
    page = <Account me={data.me} />;
  } else if (error && !data) {
    page = (
      <div role="alert" className="error">
        {errorMessage(error)} <button onClick={() => void refetch()}>Retry</button>
      </div>
    );
  } else {
    page = <LoginForm graphqlURL={graphqlURL} />;
  }
  return (
    <main>
      <h1>gatehouse</h1>
      {page}
    </main>
  );
}
