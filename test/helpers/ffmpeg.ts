export { ffmpegPath } from '@relaycast/devnet';
