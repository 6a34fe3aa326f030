import { useState, type FormEvent } from 'react';
import { useApolloClient, useMutation, useReactiveVar } from '@apollo/client/react';
import { sessionEnded } from './apollo';
import { lostCookieCauses, type LostCookieCause } from './cookies';
import { errorMessage } from './errors';
import { LogInMutation, MeQuery, SignUpMutation } from './operations';

/**
 * LoginForm signs a visitor in, or up, with a username and password, on the
 * gatehouse at graphqlURL. When the server accepts the password but the
 * browser does not keep the session cookie, it says why. For an account
 * with two-factor on, the password opens a session that waits for a code,
 * and App shows SecondFactorForm next.
 */
export function LoginForm({ graphqlURL }: { graphqlURL: string }) {
  const client = useApolloClient();
  const ended = useReactiveVar(sessionEnded);
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [failure, setFailure] = useState<string | null>(null);
  const [lostCookie, setLostCookie] = useState<LostCookieCause[] | null>(null);
  const [logIn, logInState] = useMutation(LogInMutation);
  const [signUp, signUpState] = useMutation(SignUpMutation);
  const busy = logInState.loading || signUpState.loading;

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const action = (e.nativeEvent as SubmitEvent).submitter?.getAttribute('value');
    setFailure(null);
    setLostCookie(null);
    try {
      const variables = { username, password };
      let pending = false; // the session waits for the second factor
      if (action === 'signup') await signUp({ variables });
      else pending = (await logIn({ variables })).data?.login.secondFactorRequired ?? false;
      sessionEnded(null);
      // The answer set the session cookie, unless the browser refused it
      // (see cookies.ts). Ask who we are, outside the cache, before
      // anything on screen changes: signed out still means the cookie was
      // dropped, which would otherwise just show this form again. A
      // session that waits for the second factor has no me yet, but says
      // it waits.
      const { data } = await client.query({ query: MeQuery, fetchPolicy: 'no-cache' });
      if (pending ? !data?.session?.secondFactorPending : !data?.me) {
        setLostCookie(lostCookieCauses(window.location.origin, graphqlURL));
        return;
      }
    } catch (err) {
      setFailure(errorMessage(err));
      return;
    }
    // Drop everything cached for the signed-out visitor and ask again who
    // we are: the account page, or the second step (SecondFactorForm).
    await client.resetStore();
  }

  return (
    <form onSubmit={(e) => void submit(e)} className="card" aria-label="Sign in">
      <h2>Log in or sign up</h2>
      {ended && <p role="status" className="warning">{ended}</p>}
      <label>
        Username
        <input name="username" autoComplete="username" required value={username}
          onChange={(e) => setUsername(e.target.value)} />
      </label>
      <label>
        Password
        <input name="password" type="password" autoComplete="current-password" required value={password}
          onChange={(e) => setPassword(e.target.value)} />
      </label>
      {failure && <p role="alert" className="error">{failure}</p>}
      {lostCookie && (
        <div role="alert" className="error" aria-label="Session cookie refused">
          <p><strong>Signed in, but this browser did not keep the session cookie</strong>, so you are
            still signed out. Check:</p>
          <ul>
            {lostCookie.map((cause) => (
              <li key={cause.text}>{cause.likely && <strong>Likely: </strong>}{cause.text}</li>
            ))}
          </ul>
        </div>
      )}
      <div className="actions">
        <button type="submit" value="login" disabled={busy}>Log in</button>
        <button type="submit" value="signup" disabled={busy} className="secondary">Sign up</button>
      </div>
    </form>
  );
}
