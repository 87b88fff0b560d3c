export const metadata = { title: 'Paywire × Next.js' };

export default function RootLayout({ children }: { children: React.ReactNode }) {
  return (
    <html lang="en">
      <body style={{ fontFamily: 'system-ui, sans-serif', maxWidth: 640, margin: '3rem auto' }}>
        {children}
      </body>
    </html>
  );
}
