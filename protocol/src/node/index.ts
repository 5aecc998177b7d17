export { privateKeyFromSeed, publicKeyFromRaw, rawPublicKey, signEd25519, verifyEd25519 } from './ed25519.js';
export {
  KEYPAIR_SECRET_BYTES,
  checkSecretKey,
  formatKeypairText,
  generateSecretKey,
  parseKeypairText,
  readKeypairFile,
  secretKeyFromSeed,
  writeNewKeypairFile,
  type KeypairFileRead,
} from './keypair-file.js';
export {
  merkleRoot,
  receiptLeaf,
  sessionKeyObject,
  signAssignment,
  signBindProof,
  signGrant,
  signReceipt,
  signTrackerSessionProof,
  verifyAssignmentSignature,
  verifyBindProof,
  verifyGrantSignature,
  verifyReceiptSignature,
  verifyTrackerSessionProof,
} from './payments.js';
export { signRedeemBody, verifyRedeemSignature } from './settlement.js';
