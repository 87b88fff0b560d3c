/**
 * Mints the browser's MQTT token for the signed-in user, server-side, through Paywire's admin API, so the
 * admin key never reaches the browser. (With MQTT_TOKEN_SECRET shared, the same HS256 JWT could be signed
 * here with jose instead.)
 */
import { currentUserId } from '../../session';

export async function GET() {
  const response = await fetch(`${process.env.PAYWIRE_URL ?? 'http://localhost:3000'}/admin/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${process.env.PAYWIRE_ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ userId: await currentUserId(), ttlSeconds: 900 }),
    cache: 'no-store',
  });
  if (!response.ok) return Response.json({ error: 'token_unavailable' }, { status: 502 });
  return Response.json(await response.json(), { headers: { 'cache-control': 'no-store' } });
}
