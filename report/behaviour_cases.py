"""The behavioural suite: short comments that each test one capability of a toxicity classifier.

**Toxic, as this dataset defines it** (Kaggle / Impermium, "Detecting Insults in Social
Commentary", 2012): *a comment is toxic when it insults a participant of the conversation* — the
person it replies to, or someone else taking part. Harsh words about a thing, an idea or a third
party, swearing that insults nobody, and a neutral mention of who someone is are not toxic. A reply
that is nothing but an insult ("moron", "you clown") addresses the person it answers, so it is toxic.

Every case below is labelled by that definition, not by whether it contains a rude word. This is
CheckList's minimum functionality test (Ribeiro et al. 2020, "Beyond Accuracy: Behavioral Testing
of NLP Models with CheckList"): one capability per group of cases, many cases per capability, so
that a pass rate tells what a model can and cannot do where a test-set score averages it away.

Why a Python module and not a JSON Lines file: most capabilities are a template filled with a word
list, as in CheckList, and the template and its words are the readable part (fix a word once, every
case that uses it follows). A few groups are hand-written sentences. ``python -m report.behaviour_cases``
writes the expanded cases as JSON Lines for anyone who wants a plain file. The sentences were
written for this suite; ``tests/test_behaviour_suite.py`` checks that none of them is a comment of
the insults data (train, validation or test split).
"""
import json
import sys
from dataclasses import asdict, dataclass

TOXIC, NOT_TOXIC = 1, 0


@dataclass(frozen=True)
class Case:
    """One comment, the label the definition above gives it, and what it tests."""
    text: str
    label: int  # 1 toxic, 0 not toxic
    capability: str
    template: str | None = None  # the template it was filled from, None for a hand-written case


CAPABILITIES = {
    "bare insult": "a single insult word or a two-word insult: the reply is the insult",
    "insult in context": "an insult inside a longer, otherwise neutral sentence",
    "directed vs undirected": "the same harsh word aimed at a participant (toxic) or at a thing (not toxic)",
    "negation": "an insult that is denied: not toxic",
    "profanity without insult": "swearing that insults nobody: not toxic",
    "obfuscation": "an insult spelled to dodge a filter: spacing, leetspeak, misspelling",
    "identity terms": "religion, nationality, gender, sexuality or disability in a neutral sentence: not toxic",
    "polite disagreement": "disagreement without an insult: not toxic",
}

INSULT_NOUNS = ("idiot", "moron", "clown", "loser", "imbecile", "fool", "jerk", "dumbass", "cretin",
                "halfwit", "buffoon", "dimwit", "nitwit", "numbskull", "scumbag", "creep")
INSULT_ADJECTIVES = ("stupid", "pathetic", "brainless", "clueless", "worthless", "ignorant")


def fill(template: str, capability: str, label: int, **words: tuple[str, ...]) -> list[Case]:
    """One case per value of the single ``{slot}`` in ``template``."""
    (slot, values), = words.items()
    return [Case(template.format(**{slot: value}), label, capability, template) for value in values]


def article(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def bare_insults() -> list[Case]:
    capability = "bare insult"
    # "idiot" on its own is a comment of the training data, so the single words swap it for two others.
    return (fill("{noun}", capability, TOXIC, noun=INSULT_NOUNS[1:] + ("twit", "dolt"))
            + fill("you {noun}", capability, TOXIC, noun=INSULT_NOUNS)
            + [Case(f"{adjective} {noun}", TOXIC, capability, "{adjective} {noun}")
               for adjective, noun in zip(INSULT_ADJECTIVES, ("idiot", "loser", "clown", "fool", "creep", "moron"))])


def insults_in_context() -> list[Case]:
    capability = "insult in context"
    cases = fill("Thanks for posting the bus timetable, you {noun}.", capability, TOXIC, noun=INSULT_NOUNS[:8])
    cases += fill("I read the whole report this morning and you are still {noun}.", capability, TOXIC,
                  noun=tuple(article(n) for n in INSULT_NOUNS[8:]))
    cases += fill("The meeting moved to Thursday, so plan around it, you {adjective} person.", capability,
                  TOXIC, adjective=INSULT_ADJECTIVES)
    cases += [Case(text, TOXIC, capability) for text in (
        "My train was late again today and only an idiot like you would defend the timetable.",
        "We planted tomatoes last spring, which you would know if you were not such a moron.",
        "The library opens at nine on weekdays, genius, try reading the sign, you absolute clown.",
        "I cooked pasta for the whole family last night; you are too much of a loser to understand that.",
        "The bridge closes for repairs in May, not that a dimwit like you can read a calendar.",
        "Nice weather for a walk by the river today, shame you are such a pathetic creep.",
    )]
    return cases


def directed_vs_undirected() -> list[Case]:
    """Each harsh word twice: about the person replied to (toxic), then about a thing (not toxic)."""
    capability = "directed vs undirected"
    pairs = (
        ("garbage", "this code is garbage"), ("trash", "the referee's call was trash"),
        ("pathetic", "the heating in this flat is pathetic"), ("so stupid", "that rule is so stupid"),
        ("useless", "this umbrella is useless in the wind"), ("a joke", "the new bus schedule is a joke"),
        ("worthless", "these old coupons are worthless"), ("disgusting", "the canteen soup was disgusting"),
        ("a disgrace", "the state of this road is a disgrace"), ("ridiculous", "the ticket prices are ridiculous"),
        ("an embarrassment", "the final score was an embarrassment"), ("a waste of space", "that empty car park is a waste of space"),
        ("dumb", "the plot of that film is dumb"), ("hopeless", "the printer in our office is hopeless"),
    )
    cases = []
    for word, about_a_thing in pairs:
        cases.append(Case(f"you are {word}", TOXIC, capability, "you are {word}"))
        cases.append(Case(about_a_thing, NOT_TOXIC, capability))
    return cases


def negations() -> list[Case]:
    capability = "negation"
    cases = fill("you are not {noun}", capability, NOT_TOXIC, noun=tuple(article(n) for n in INSULT_NOUNS[:8]))
    cases += fill("I would never call you {adjective}", capability, NOT_TOXIC, adjective=INSULT_ADJECTIVES)
    cases += fill("Nobody here thinks you are {noun}.", capability, NOT_TOXIC,
                  noun=tuple(article(n) for n in INSULT_NOUNS[8:14]))
    cases += [Case(text, NOT_TOXIC, capability) for text in (
        "You are not stupid at all, you just missed one step.",
        "I don't think you're an idiot, I think the manual is confusing.",
        "Calling you a moron would be unfair, your point is reasonable.",
        "No one said you were a loser; you came second out of fifty.",
        "You're far from clueless, that answer was spot on.",
        "It is not true that you are ignorant about this, you clearly did the reading.",
    )]
    return cases


def profanity_without_insult() -> list[Case]:
    capability = "profanity without insult"
    cases = fill("{swear}, that was a good game", capability, NOT_TOXIC,
                 swear=("damn", "hell yes", "holy shit", "bloody hell", "fuck yeah"))
    cases += [Case(text, NOT_TOXIC, capability) for text in (
        "that was a damn good game",
        "this fucking recipe is amazing, thank you for sharing",
        "damn, I forgot my keys at the office again",
        "holy crap, the view from the summit was worth the climb",
        "shit, my train is cancelled, I'll be an hour late",
        "the concert was bloody brilliant last night",
        "hell, I'd pay twice that for a ticket",
        "what the hell happened to the weather today",
        "this damn printer jams every single morning",
        "fuck, I burnt the toast again",
        "oh shit, I missed the deadline, my bad",
        "that goal in the last minute was fucking incredible",
        "the damn cat knocked my coffee over",
        "goddamn, this soup is good",
        "I stubbed my toe on the bloody table, ouch",
        "pissed off that the shop closed early today",
        "the crappy weather ruined our picnic",
        "that's a hell of a comeback by the team",
        "screw it, I'm ordering pizza tonight",
        "your garden looks damn fine this year",
    )]
    return cases


def obfuscations() -> list[Case]:
    capability = "obfuscation"
    spellings = ("id1ot", "1diot", "m0ron", "l0ser", "cl0wn", "dumb@ss", "stup1d", "f00l", "imb3cile", "j3rk",
                 "i d i o t", "m o r o n", "l o s e r", "s t u p i d", "i.d.i.o.t",
                 "stoopid", "idjit", "moran", "looser", "dumass", "loozer", "stupidd", "idiiot", "morron")
    cases = fill("you {word}", capability, TOXIC, word=spellings[:12])
    cases += fill("you are such a {word}", capability, TOXIC, word=spellings[12:])
    cases += [Case(text, TOXIC, capability) for text in ("u r an id10t", "ur a m0r0n lol", "shut up, st00pid")]
    return cases


def identity_terms() -> list[Case]:
    capability = "identity terms"
    identities = ("Muslim", "Jewish", "Christian", "Hindu", "an atheist", "Buddhist",
                  "Mexican", "Nigerian", "Chinese", "Irish", "Pakistani", "a Palestinian",
                  "a woman", "a man", "transgender", "non-binary",
                  "gay", "a lesbian", "bisexual", "straight",
                  "deaf", "blind", "autistic", "in a wheelchair")
    cases = fill("I am {identity}.", capability, NOT_TOXIC, identity=identities)
    cases += fill("My neighbour is {identity} and grows the best tomatoes on our street.", capability,
                  NOT_TOXIC, identity=identities)
    return cases


def polite_disagreements() -> list[Case]:
    capability = "polite disagreement"
    openers = ("I see your point, but", "With respect,", "Thanks for explaining, though",
               "I could be wrong, but", "Fair enough, yet")
    claims = ("I read the figures differently.", "I think the study measured something else.",
              "I don't agree that the tax would help.", "the evidence points the other way for me.",
              "I would choose the second option.")
    cases = [Case(f"{opener} {claim}", NOT_TOXIC, "polite disagreement", "{opener} {claim}")
             for opener in openers for claim in claims]
    cases += [Case(text, NOT_TOXIC, capability) for text in (
        "I disagree, and here is why: the survey only asked students.",
        "Respectfully, your numbers leave out the winter months.",
        "We will have to agree to disagree on this one.",
        "You make a good argument, but I'm not convinced yet.",
        "I think you are mistaken about the date, it was 2019.",
    )]
    return cases


def suite() -> list[Case]:
    """Every case, grouped by capability in the order of CAPABILITIES."""
    return (bare_insults() + insults_in_context() + directed_vs_undirected() + negations()
            + profanity_without_insult() + obfuscations() + identity_terms() + polite_disagreements())


if __name__ == "__main__":
    for case in suite():
        sys.stdout.write(json.dumps(asdict(case), ensure_ascii=False) + "\n")
