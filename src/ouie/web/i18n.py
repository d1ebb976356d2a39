"""UI strings of the console and the public page, in French and English.

One small catalogue: ``key → (en, fr)``. Templates call ``t("key")``; JavaScript gets the
subset it needs as JSON in the page (``js_strings``). A missing key is a test failure
(``tests/web/test_i18n.py`` checks every ``t("…")`` used in the templates), not a blank.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

Lang = Literal["en", "fr"]
LANGS: tuple[Lang, ...] = ("fr", "en")
DEFAULT_LANG: Lang = "fr"

_CATALOGUE: dict[str, tuple[str, str]] = {
    # chrome
    "app.name": ("ouie", "ouie"),
    "app.tagline": ("Acoustic event detection", "Détection d'événements sonores"),
    "nav.map": ("Map", "Carte"),
    "nav.incidents": ("Incidents", "Incidents"),
    "nav.sensors": ("Sensors", "Capteurs"),
    "nav.stats": ("Statistics", "Statistiques"),
    "nav.audit": ("Audit log", "Journal d'audit"),
    "nav.admin": ("Administration", "Administration"),
    "nav.public": ("Public page", "Page publique"),
    "nav.logout": ("Log out", "Se déconnecter"),
    "nav.skip": ("Skip to content", "Aller au contenu"),
    "nav.language": ("Language", "Langue"),
    "nav.signed_in_as": ("Signed in as", "Connecté en tant que"),
    "live.connected": ("Live", "En direct"),
    "live.disconnected": ("Reconnecting…", "Reconnexion…"),
    "sound.on": ("Sound on", "Son activé"),
    "sound.off": ("Sound off", "Son coupé"),
    "session.expiring": (
        "Your session expires in one minute. Save your work.",
        "Votre session expire dans une minute. Enregistrez votre travail.",
    ),
    "session.expired": (
        "Your session has expired. Please log in again.",
        "Votre session a expiré. Veuillez vous reconnecter.",
    ),
    # login
    "login.title": ("Log in", "Connexion"),
    "login.username": ("User name", "Identifiant"),
    "login.password": ("Password", "Mot de passe"),
    "login.submit": ("Log in", "Se connecter"),
    "login.failed": ("Wrong user name or password.", "Identifiant ou mot de passe incorrect."),
    "login.limited": (
        "Too many attempts. Wait a minute and try again.",
        "Trop de tentatives. Patientez une minute puis réessayez.",
    ),
    "login.logged_out": ("You are logged out.", "Vous êtes déconnecté."),
    # roles
    "role.viewer": ("Viewer", "Observateur"),
    "role.operator": ("Operator", "Opérateur"),
    "role.supervisor": ("Supervisor", "Superviseur"),
    "role.auditor": ("Auditor", "Auditeur"),
    "role.admin": ("Administrator", "Administrateur"),
    # labels
    "label.gunshot": ("Gunshot", "Coup de feu"),
    "label.glass_breaking": ("Glass breaking", "Bris de verre"),
    "label.scream": ("Scream", "Cri"),
    "label.explosion": ("Explosion", "Explosion"),
    "label.vehicle_crash": ("Vehicle crash", "Accident de véhicule"),
    "label.siren": ("Siren", "Sirène"),
    "label.car_alarm": ("Car alarm", "Alarme de véhicule"),
    "label.spray_can": ("Spray can", "Bombe de peinture"),
    # states
    "state.new": ("New", "Nouveau"),
    "state.acknowledged": ("Acknowledged", "Pris en compte"),
    "state.verifying": ("Verifying", "Levée de doute"),
    "state.confirmed": ("Confirmed", "Confirmé"),
    "state.dismissed": ("Dismissed", "Écarté"),
    "state.closed": ("Closed", "Clos"),
    # health
    "health.ok": ("OK", "OK"),
    "health.clock": ("Clock drift", "Dérive d'horloge"),
    "health.offline": ("Offline", "Hors ligne"),
    "health.unknown": ("Unknown", "Inconnu"),
    "health.degraded": ("Degraded", "Dégradé"),
    # map
    "map.title": ("Live map", "Carte en direct"),
    "map.legend": ("Legend", "Légende"),
    "map.sensors": ("Sensors", "Capteurs"),
    "map.open_incidents": ("Open incidents", "Incidents ouverts"),
    "map.none_open": ("No open incident.", "Aucun incident ouvert."),
    "map.ellipse": ("95 % location ellipse", "Ellipse de localisation à 95 %"),
    "map.cameras": ("Cameras", "Caméras"),
    "map.docks": ("Drone docks", "Bases de drone"),
    "map.offline_note": (
        "Offline map drawn from the site plan.",
        "Carte hors ligne tracée d'après le plan du site.",
    ),
    # incidents
    "incidents.title": ("Incidents", "Incidents"),
    "incidents.filter": ("Filter", "Filtrer"),
    "incidents.reset": ("Reset", "Réinitialiser"),
    "incidents.any": ("Any", "Tous"),
    "incidents.from": ("From", "Du"),
    "incidents.to": ("To", "Au"),
    "incidents.zone": ("Zone", "Zone"),
    "incidents.none": ("No incident matches.", "Aucun incident ne correspond."),
    "incidents.more": ("Older incidents", "Incidents plus anciens"),
    "col.time": ("Time", "Heure"),
    "col.class": ("Class", "Type"),
    "col.state": ("State", "État"),
    "col.zone": ("Zone", "Zone"),
    "col.sensors": ("Sensors", "Capteurs"),
    "col.score": ("Max score", "Score max"),
    "col.peak": ("Score", "Score"),
    "col.location": ("Location", "Localisation"),
    "col.sensor": ("Sensor", "Capteur"),
    "col.onset": ("Onset", "Début"),
    "col.level": ("Level", "Niveau"),
    "col.role": ("Role", "Rôle"),
    "col.user": ("User", "Utilisateur"),
    "col.actions": ("Actions", "Actions"),
    "col.active": ("Active", "Actif"),
    "col.comment": ("Comment", "Commentaire"),
    "col.detail": ("Detail", "Détail"),
    "col.action": ("Action", "Action"),
    "col.actor": ("By", "Par"),
    "col.health": ("Health", "État"),
    "col.last_seen": ("Last seen", "Vu"),
    "col.position": ("Position", "Position"),
    "col.height": ("Height", "Hauteur"),
    "col.threshold": ("Threshold", "Seuil"),
    "col.label": ("Class", "Type"),
    "col.precision": ("Precision", "Précision"),
    "col.count": ("Count", "Nombre"),
    # incident page
    "incident.title": ("Incident", "Incident"),
    "incident.acknowledge": ("Acknowledge", "Prendre en compte"),
    "incident.verify": ("Start verification", "Lancer la levée de doute"),
    "incident.confirm": ("Confirm", "Confirmer"),
    "incident.dismiss": ("Dismiss", "Écarter"),
    "incident.close": ("Close", "Clore"),
    "incident.comment": ("Comment (optional)", "Commentaire (facultatif)"),
    "incident.shortcuts": ("Keyboard shortcuts", "Raccourcis clavier"),
    "incident.detections": ("Detections per sensor", "Détections par capteur"),
    "incident.detections_note": (
        "Scores and levels only: no audio is ever recorded or transmitted.",
        "Scores et niveaux uniquement : aucun son n'est jamais enregistré ni transmis.",
    ),
    "incident.location": ("Location", "Localisation"),
    "incident.method.tdoa": (
        "Multilateration from arrival times",
        "Multilatération par temps d'arrivée",
    ),
    "incident.method.strongest": (
        "Loudest sensors (level-weighted)",
        "Capteurs les plus forts (pondéré par le niveau)",
    ),
    "incident.method.area": (
        "Approximate area only: too few sensors, or no consistent fix — not a located point",
        "Zone approximative seulement : trop peu de capteurs ou aucune position cohérente — "
        "pas un point localisé",
    ),
    "incident.approximate": ("approximate area", "zone approximative"),
    "incident.rounds": ("Rounds", "Détonations"),
    "incident.rounds_note": (
        "Each round is located from its own arrival times; the incident shows the best fix.",
        "Chaque détonation est localisée par ses propres temps d'arrivée ; l'incident montre "
        "la meilleure position.",
    ),
    "incident.rounds_located": (
        "{located} of {rounds} located",
        "{located} sur {rounds} localisées",
    ),
    "incident.track": (
        "moved {metres} m from round to round",
        "{metres} m parcourus d'un tir à l'autre",
    ),
    "incident.best": ("best fix", "meilleure position"),
    "incident.by_onset": (
        "{n} by their onset only",
        "dont {n} par l'instant d'arrivée seul",
    ),
    "col.round": ("Round", "Tir"),
    "col.after": ("After", "Après"),
    "col.where": ("Where", "Où"),
    "incident.ellipse": ("95 % ellipse", "Ellipse à 95 %"),
    "incident.radius": ("radius", "rayon"),
    "incident.history": ("State history", "Historique des états"),
    "incident.audit": ("Audit trail", "Piste d'audit"),
    "incident.verification": ("Verification", "Levée de doute"),
    "incident.cameras": ("Cameras", "Caméras"),
    "incident.cue": ("Point camera", "Orienter la caméra"),
    "incident.drone": ("Drone", "Drone"),
    "incident.drone_plan": ("Plan drone flight", "Préparer un vol de drone"),
    "incident.drone_approve": ("Approve flight", "Autoriser le vol"),
    "incident.drone_abort": ("Return to launch", "Retour à la base"),
    "incident.verification_unavailable": (
        "Camera and drone actions are not configured on this hub.",
        "Les actions caméra et drone ne sont pas configurées sur ce hub.",
    ),
    "incident.feedback": ("Operator feedback", "Retour de l'opérateur"),
    "incident.feedback_given": ("Feedback recorded", "Retours enregistrés"),
    "feedback.verdict": ("Verdict", "Verdict"),
    "feedback.true_alarm": ("True alarm", "Vraie alerte"),
    "feedback.false_alarm": ("False alarm", "Fausse alerte"),
    "feedback.unsure": ("Unsure", "Incertain"),
    "feedback.cause": ("Real cause", "Cause réelle"),
    "feedback.cause_hint": (
        "e.g. firecracker, exhaust backfire, door slam",
        "ex. pétard, raté d'échappement, porte claquée",
    ),
    "feedback.comment": ("Comment", "Commentaire"),
    "feedback.submit": ("Record feedback", "Enregistrer le retour"),
    "feedback.saved": ("Feedback recorded.", "Retour enregistré."),
    "action.done": ("Done.", "Fait."),
    "action.failed": ("The action failed", "L'action a échoué"),
    "action.forbidden": (
        "Your role does not allow this action.",
        "Votre rôle ne permet pas cette action.",
    ),
    "incident.first_onset": ("First onset", "Premier début"),
    "incident.last_onset": ("Last onset", "Dernier début"),
    "incident.created": ("Created", "Créé"),
    # sensors
    "sensors.title": ("Sensors", "Capteurs"),
    "sensor.title": ("Sensor", "Capteur"),
    "sensor.hears": ("What the sensor hears", "Ce que le capteur entend"),
    "sensor.hears_note": (
        "Classifier scores of recent detections, per class (scores only, never audio).",
        "Scores du classifieur des détections récentes, par type (scores uniquement, jamais "
        "de son).",
    ),
    "sensor.level": ("Sound level", "Niveau sonore"),
    "sensor.level_mean": ("mean", "moyen"),
    "sensor.level_max": ("max", "max"),
    "sensor.suppressions": ("Speech suppressions", "Suppressions (parole)"),
    "sensor.suppressions_note": (
        "Candidate events withheld because speech dominated them.",
        "Événements candidats retenus car la parole y dominait.",
    ),
    "sensor.events": ("Events emitted", "Événements émis"),
    "sensor.uptime": ("Uptime", "Disponibilité"),
    "sensor.clock": ("Clock", "Horloge"),
    "sensor.model": ("Model", "Modèle"),
    "sensor.cpu": ("CPU", "CPU"),
    "sensor.thresholds": ("Detection thresholds", "Seuils de détection"),
    "sensor.thresholds_note": (
        "Pushed to the node on its retained configuration topic.",
        "Envoyés au capteur sur son sujet de configuration retenu.",
    ),
    "sensor.thresholds_save": ("Save thresholds", "Enregistrer les seuils"),
    "sensor.thresholds_readonly": (
        "Only supervisors can change thresholds.",
        "Seuls les superviseurs peuvent modifier les seuils.",
    ),
    "sensor.default": ("default", "par défaut"),
    "sensor.defaults_basis": (
        "Defaults, calibrated for this sensor's model",
        "Valeurs par défaut, calibrées pour le modèle de ce capteur",
    ),
    "sensor.no_status": ("No status received yet.", "Aucun état reçu pour l'instant."),
    "sensor.never": ("never", "jamais"),
    "sensor.recent": ("Recent detections", "Détections récentes"),
    "sensor.trust": ("Message authenticity", "Authenticité des messages"),
    "sensor.trust_note": (
        "Messages refused by the hub for this sensor: unsigned, wrongly signed, replayed or "
        "too old (docs/security.md). Each refusal is kept in the dead letters and audited.",
        "Messages de ce capteur refusés par le hub : non signés, mal signés, rejoués ou trop "
        "anciens (docs/security.md). Chaque refus est conservé et journalisé.",
    ),
    "sensor.signing_key": ("Signing key", "Clé de signature"),
    "sensor.unsigned": (
        "none: messages are not verified",
        "aucune : les messages ne sont pas vérifiés",
    ),
    "sensor.certificate": ("Certificate (SHA-256)", "Certificat (SHA-256)"),
    "sensor.rejected_configs": (
        "Configs refused by the sensor",
        "Configurations refusées par le capteur",
    ),
    "sensor.no_rejections": ("No message refused.", "Aucun message refusé."),
    "sensor.reason": ("Reason", "Motif"),
    "sensor.count": ("Count", "Nombre"),
    "sensor.last_refused": ("Last", "Dernier"),
    # stats
    "stats.title": ("Statistics", "Statistiques"),
    "stats.per_day": ("Incidents per day and class", "Incidents par jour et par type"),
    "stats.precision_label": (
        "Precision from operator feedback, per class",
        "Précision d'après les retours des opérateurs, par type",
    ),
    "stats.precision_sensor": (
        "Precision from operator feedback, per sensor",
        "Précision d'après les retours des opérateurs, par capteur",
    ),
    "stats.precision_note": (
        "True alarms ÷ (true + false alarms); 'unsure' is left out. n = incidents with feedback.",
        "Vraies alertes ÷ (vraies + fausses) ; « incertain » est exclu. n = incidents avec retour.",
    ),
    "stats.response": ("Response times", "Temps de réponse"),
    "stats.to_ack": ("new → acknowledged", "nouveau → pris en compte"),
    "stats.to_close": ("new → closed or dismissed", "nouveau → clos ou écarté"),
    "stats.days": ("Period", "Période"),
    "stats.days_n": ("{n} days", "{n} jours"),
    "stats.no_data": ("No data yet.", "Pas encore de données."),
    "stats.median": ("median", "médiane"),
    "stats.p90": ("90th percentile", "90e centile"),
    "stats.experiment": ("Experiment: success criteria", "Expérimentation : critères de réussite"),
    "stats.experiment_note": (
        "Operators' feedback since {since} ({days} days; experiment ends {end}): {judged} alerts "
        "judged; the criteria are read after {min}.",
        "Retours des opérateurs depuis le {since} ({days} jours ; fin de l'expérimentation le "
        "{end}) : {judged} alertes jugées ; les critères se lisent à partir de {min}.",
    ),
    "stats.criterion": ("Criterion", "Critère"),
    "stats.threshold": ("Threshold", "Seuil"),
    "stats.measured": ("Measured", "Mesuré"),
    "stats.criterion.precision": ("Precision", "Précision"),
    "stats.criterion.false_alerts": (
        "False alerts per sensor and day",
        "Fausses alertes par capteur et par jour",
    ),
    "stats.criterion.ack": ("Median time to acknowledge", "Délai médian de prise en compte"),
    "stats.met": ("met", "atteint"),
    "stats.not_met": ("not met", "non atteint"),
    "stats.too_few": ("too few judged alerts", "trop peu d'alertes jugées"),
    "stats.stop_reached": ("Stop criterion reached:", "Critère d'arrêt atteint :"),
    # audit
    "audit.title": ("Audit log", "Journal d'audit"),
    "audit.verify": ("Chain verified", "Chaîne vérifiée"),
    "audit.broken": ("Chain broken", "Chaîne rompue"),
    "audit.export": ("Export (JSON lines)", "Exporter (JSON lines)"),
    # admin
    "admin.title": ("Administration", "Administration"),
    "admin.users": ("Users and roles", "Utilisateurs et rôles"),
    "admin.add_user": ("Add user", "Ajouter un utilisateur"),
    "admin.save": ("Save", "Enregistrer"),
    "admin.sensors": ("Sensors", "Capteurs"),
    "admin.cameras": ("Cameras", "Caméras"),
    "admin.docks": ("Drone docks", "Bases de drone"),
    "admin.retention": ("Retention", "Conservation"),
    "admin.retention_days": ("Days kept", "Durée (jours)"),
    "admin.retention_run": ("Run retention now", "Appliquer la conservation maintenant"),
    "admin.retention_note": (
        "Detections and incidents older than this are deleted; the deletion is audited.",
        "Les détections et incidents plus anciens sont supprimés ; la suppression est tracée.",
    ),
    "admin.none": ("None configured.", "Aucun configuré."),
    "admin.user_saved": ("User saved.", "Utilisateur enregistré."),
    "admin.pending": (
        "Saved as a request: a second administrator must confirm it.",
        "Enregistré comme demande : un second administrateur doit la confirmer.",
    ),
    "admin.changes": (
        "Changes awaiting a second administrator",
        "Modifications en attente d'un second administrateur",
    ),
    "admin.changes_note": (
        "Granting supervisor or administrator, and resetting their passwords, takes two "
        "administrators. You cannot confirm your own request.",
        "Attribuer le rôle superviseur ou administrateur, et réinitialiser leur mot de passe, "
        "demande deux administrateurs. Vous ne pouvez pas confirmer votre propre demande.",
    ),
    "admin.change_password": ("new password", "nouveau mot de passe"),
    "admin.change_new_user": ("new user", "nouvel utilisateur"),
    "admin.requested_by": ("Requested by", "Demandé par"),
    "admin.confirm": ("Confirm", "Confirmer"),
    "admin.refuse": ("Refuse", "Refuser"),
    # public page
    "public.title": ("Sound detection in public space", "Détection sonore dans l'espace public"),
    "public.intro": (
        "Sensors in this area listen for a few kinds of emergency sounds and alert the "
        "control room. They never record, keep or transmit sound or speech.",
        "Des capteurs dans ce secteur détectent quelques types de sons d'urgence et alertent "
        "le centre de supervision. Ils n'enregistrent, ne conservent et ne transmettent "
        "jamais de son ni de parole.",
    ),
    "public.map": ("Where the sensors are", "Où sont les capteurs"),
    "public.detected": ("What is detected", "Ce qui est détecté"),
    "public.never": ("What is never collected", "Ce qui n'est jamais collecté"),
    "public.never.audio": (
        "No audio: sound is analysed in the sensor's memory, a few seconds at a time, and "
        "overwritten. It is never stored or sent.",
        "Aucun son : le son est analysé dans la mémoire du capteur, quelques secondes à la "
        "fois, puis effacé. Il n'est jamais stocké ni envoyé.",
    ),
    "public.never.speech": (
        "No speech: there is no speech or voice class; a sound dominated by speech is "
        "suppressed by the sensor.",
        "Aucune parole : il n'existe aucune catégorie « parole » ou « voix » ; un son dominé "
        "par la parole est écarté par le capteur.",
    ),
    "public.never.identity": (
        "No identification: no faces, no voices, no phone or vehicle identifiers.",
        "Aucune identification : ni visage, ni voix, ni identifiant de téléphone ou de véhicule.",
    ),
    "public.sent": (
        "What a sensor sends: the class of the sound, its time, a confidence score and its "
        "loudness.",
        "Ce qu'un capteur envoie : le type du son, l'heure, un score de confiance et son "
        "intensité.",
    ),
    "public.retention": ("How long data is kept", "Durée de conservation"),
    "public.retention_text": (
        "Detections and incidents are deleted after {days} days.",
        "Les détections et incidents sont supprimés au bout de {days} jours.",
    ),
    "public.controller": ("Who is responsible", "Responsable du traitement"),
    "public.dpo": ("Data protection officer", "Délégué à la protection des données"),
    "public.authority": ("Supervisory authority", "Autorité de contrôle"),
    "public.legal_basis": ("Legal basis", "Base légale"),
    "public.purposes": ("Purposes", "Finalités"),
    "public.hours": ("Listening hours", "Heures d'écoute"),
    "public.hours_always": ("Around the clock", "24 h sur 24"),
    "public.dpia": ("Privacy impact assessment (summary)", "Analyse d'impact (résumé)"),
    "public.counts": (
        "Incidents per week, by class",
        "Incidents par semaine, par type",
    ),
    "public.counts_note": (
        "Counted for the whole zone '{zone}'; no finer location is published.",
        "Comptés pour l'ensemble de la zone « {zone} » ; aucune localisation plus fine n'est "
        "publiée.",
    ),
    "public.week": ("Week of", "Semaine du"),
    "public.counts_until": ("Counted up to", "Comptés jusqu'au"),
    "public.not_set": (
        "Not yet declared by the controller.",
        "Pas encore déclaré par le responsable.",
    ),
    "public.rights": (
        "You can ask the controller or the data protection officer about this processing, "
        "and complain to the supervisory authority.",
        "Vous pouvez interroger le responsable ou le délégué à la protection des données sur "
        "ce traitement, et saisir l'autorité de contrôle.",
    ),
    "public.updated": (
        "Generated from the live configuration at",
        "Généré depuis la configuration en service le",
    ),
    "public.anchor": ("Audit log seal", "Sceau du journal d'audit"),
    "public.anchor_intro": (
        "Every action on incident data is written to a chained audit log. The hub signs the "
        "log's latest entry with a key kept apart from its database and publishes the "
        "signature here: record it, and any later rewriting of the log can be proven.",
        "Chaque action sur les données d'incident est inscrite dans un journal d'audit chaîné. "
        "Le hub signe la dernière entrée du journal avec une clé conservée hors de sa base de "
        "données et publie la signature ici : conservez-la, et toute réécriture ultérieure du "
        "journal pourra être prouvée.",
    ),
    "public.anchor_entry": ("Entry", "Entrée"),
    "public.anchor_hash": ("Chain hash", "Empreinte de la chaîne"),
    "public.anchor_signed": ("Signed at", "Signé le"),
    "public.anchor_key": ("Public key (Ed25519)", "Clé publique (Ed25519)"),
    "public.anchor_signature": ("Signature", "Signature"),
    "public.anchor_none": (
        "No seal published yet.",
        "Aucun sceau publié pour l'instant.",
    ),
    "public.anchor_data": ("Machine-readable", "Format lisible par machine"),
    "dpia.zone": (
        "Zone '{name}': {area} ha, listening {hours} h a day.",
        "Zone « {name} » : {area} ha, écoute {hours} h par jour.",
    ),
    "dpia.creep": (
        "Risk of function creep — measure: the messages a sensor can send have no field able "
        "to carry sound, and a test checks every message format.",
        "Risque de détournement de finalité — mesure : les messages d'un capteur n'ont aucun "
        "champ capable de transporter du son, et un test vérifie chaque format de message.",
    ),
    "dpia.breach": (
        "Risk of a data breach — measure: no audio or identity is stored at all; access needs "
        "an account with a role, and is logged.",
        "Risque de fuite de données — mesure : aucun son ni aucune identité n'est stocké ; "
        "l'accès exige un compte doté d'un rôle, et il est journalisé.",
    ),
    # errors
    "error.forbidden": (
        "You do not have access to this page.",
        "Vous n'avez pas accès à cette page.",
    ),
    "error.not_found": ("Not found.", "Introuvable."),
    "common.yes": ("yes", "oui"),
    "common.no": ("no", "non"),
    "common.back": ("Back", "Retour"),
    "common.open": ("Open", "Ouvrir"),
    "common.seconds": ("s", "s"),
    "common.minutes": ("min", "min"),
    "common.ago": ("ago", "il y a"),
    "common.saved": ("Saved.", "Enregistré."),
}

#: Keys the browser scripts need (sent as JSON in each page).
JS_KEYS = (
    "live.connected",
    "live.disconnected",
    "sound.on",
    "sound.off",
    "session.expiring",
    "session.expired",
    "action.done",
    "action.failed",
    "action.forbidden",
    "feedback.saved",
    "common.saved",
    "common.open",
    "admin.pending",
    "map.none_open",
    "incident.radius",
    "col.sensors",
    "incident.acknowledge",
    "incident.rounds",
    "incident.approximate",
    *[k for k in _CATALOGUE if k.startswith(("label.", "state.", "health."))],
)


def keys() -> frozenset[str]:
    return frozenset(_CATALOGUE)


def translate(lang: Lang, key: str, **values: object) -> str:
    """The string for ``key`` in ``lang``, with ``{name}`` placeholders filled."""
    pair = _CATALOGUE.get(key)
    if pair is None:
        return key
    text = pair[0] if lang == "en" else pair[1]
    return text.format(**values) if values else text


def translator(lang: Lang) -> Callable[..., str]:
    def t(key: str, **values: object) -> str:
        return translate(lang, key, **values)

    return t


def js_strings(lang: Lang) -> dict[str, str]:
    return {key: translate(lang, key) for key in JS_KEYS}


def pick_lang(
    cookie: str | None, accept_language: str | None, default: Lang = DEFAULT_LANG
) -> Lang:
    """The language from the ``ouie_lang`` cookie, else the browser's preference, else
    ``default``."""
    if cookie in LANGS:
        return "en" if cookie == "en" else "fr"
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code == "fr":
            return "fr"
        if code == "en":
            return "en"
    return default


def catalogue() -> Mapping[str, tuple[str, str]]:
    return _CATALOGUE
