export default function Home() {
  return (
    <main>
      <h1>Upgrade to Pro</h1>
      <form action="/api/checkout" method="post">
        <button type="submit">Subscribe</button>
      </form>
    </main>
  );
}
