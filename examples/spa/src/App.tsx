import { useQuery } from '@apollo/client/react';
import { Account } from './Account';
import { errorMessage } from './errors';
import { LoginForm } from './LoginForm';
import { MeQuery } from './operations';
import { SecondFactorForm } from './SecondFactorForm';

/**
 * App shows the login form to a visitor, the second step of signing in to
 * a session that waits for its second factor, and the account page to a
 * user of the gatehouse at graphqlURL.
 */
export function App({ graphqlURL }: { graphqlURL: string }) {
  const { data, error, loading, refetch } = useQuery(MeQuery);
  let page;
  // A refetch (two-factor turned on or off) keeps the page and its state
  // on screen; only the first answer is waited for.
  if (loading && !data) {
    page = <p>Loading…</p>;
  } else if (data?.me) {
    page = <Account me={data.me} />;
  } else if (data?.session?.secondFactorPending) {
    page = <SecondFactorForm />;
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
