import { useState, type FormEvent } from 'react';
import { useApolloClient, useMutation, useReactiveVar } from '@apollo/client/react';
import { sessionEnded } from './apollo';
import { errorMessage } from './errors';
import { LogInMutation, SignUpMutation } from './operations';

/** LoginForm signs a visitor in, or up, with a username and password. */
export function LoginForm() {
  const client = useApolloClient();
  const ended = useReactiveVar(sessionEnded);
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [failure, setFailure] = useState<string | null>(null);
  const [logIn, logInState] = useMutation(LogInMutation);
  const [signUp, signUpState] = useMutation(SignUpMutation);
  const busy = logInState.loading || signUpState.loading;

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const action = (e.nativeEvent as SubmitEvent).submitter?.getAttribute('value');
    setFailure(null);
    try {
      const variables = { username, password };
      await (action === 'signup' ? signUp({ variables }) : logIn({ variables }));
    } catch (err) {
      setFailure(errorMessage(err));
      return;
    }
    sessionEnded(null);
    // The response set the session cookie. Drop everything cached for the
    // signed-out visitor and ask again who we are.
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
      <div className="actions">
        <button type="submit" value="login" disabled={busy}>Log in</button>
        <button type="submit" value="signup" disabled={busy} className="secondary">Sign up</button>
      </div>
    </form>
  );
}
