import { render } from 'preact';
import '../shared/styles.css';
import { localizeDocument } from '../shared/i18n.ts';
import { ConfirmWindow } from './view.tsx';

const id = new URLSearchParams(location.search).get('prompt');
localizeDocument('confirm_pageTitle');
const root = document.getElementById('app');
if (root) render(<ConfirmWindow id={id} />, root);
