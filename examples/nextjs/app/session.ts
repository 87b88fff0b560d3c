/**
 * The signed-in user. A real app reads its own session here (NextAuth, Clerk, a cookie…); the example
 * uses a fixed demo user so that it runs without an auth provider.
 */
export async function currentUserId(): Promise<string> {
  return process.env.DEMO_USER_ID ?? 'user_demo';
}
