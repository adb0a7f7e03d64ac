"""The cookbook's figures: the published stories, fingerprint and token counts (Nov 2023).

The page prints each story as one block; its diff shows the paragraph breaks of the
two unseeded stories, which are kept here. The seeded story's breaks are not shown on
the page and are placed at its sentence groups.
"""

from __future__ import annotations

MODEL = "gpt-3.5-turbo-1106"
SYSTEM_MESSAGE = "You are a helpful assistant that generates short stories."
USER_REQUEST = "Generate a short story about a journey to Mars."
SEED = 123
FINGERPRINT = "fp_fefa7b2153"
PROMPT_TOKENS = 31

UNSEEDED_STORIES = (
    (
        "In the year 2050, a team of courageous astronauts embarked on a groundbreaking "
        "mission to Mars. The journey was filled with uncertainty and danger, but the crew "
        "was undeterred by the challenges that lay ahead.\n\n"
        "As their spacecraft hurtled through the vast expanse of space, the astronauts "
        "marveled at the beauty of the stars and the distant planets. They passed the time "
        "by conducting experiments, training for the mission ahead, and bonding with one "
        "another.\n\n"
        "After months of travel, the red planet finally came into view. The crew prepared "
        "for the landing, their hearts pounding with a mix of excitement and nervous "
        "anticipation. As the spacecraft touched down on the Martian surface, cheers erupted "
        "in the control room back on Earth.\n\n"
        "The astronauts stepped out onto the alien terrain, taking in the breathtaking "
        "landscape of rusty red rocks and dusty plains. They set up their base camp and "
        "began their scientific research, collecting samples and conducting experiments to "
        "better understand the planet's composition and potential for sustaining life.\n\n"
        "Despite the challenges of living",
        200,
    ),
    (
        "In the year 2050, a team of astronauts set out on a groundbreaking mission to Mars. "
        "The journey was long and arduous, but the crew was determined to make history. As "
        "they approached the red planet, they marveled at its otherworldly beauty and the "
        "sense of awe and wonder filled their hearts.\n\n"
        "Upon landing, the astronauts began to explore the alien landscape, conducting "
        "scientific experiments and collecting samples. They were amazed by the vast "
        "canyons, towering mountains, and the eerie silence that surrounded them. Each step "
        "they took was a giant leap for humankind, and they felt a profound sense of "
        "accomplishment.\n\n"
        "As they prepared to return to Earth, the astronauts reflected on the significance "
        "of their journey. They knew that their discoveries would pave the way for future "
        "generations to explore and inhabit Mars. With their mission complete, they boarded "
        "their spacecraft and set their sights on the distant blue planet in the sky, "
        "knowing that they had left their mark on the history of space exploration.",
        198,
    ),
)

SEEDED_STORY = (
    (
        "In the not-so-distant future, a team of brave astronauts embarked on a "
        'groundbreaking journey to Mars. The spacecraft, named "Odyssey," soared through '
        "the vast expanse of space, leaving Earth behind as they ventured toward the "
        "mysterious red planet.\n\n"
        "As the crew navigated through the cosmos, they encountered a series of challenges "
        "and obstacles, from intense solar flares to treacherous asteroid fields. However, "
        "their unwavering determination and spirit of camaraderie propelled them forward, "
        "overcoming each hurdle with courage and resilience.\n\n"
        "Upon reaching Mars, the astronauts were greeted by a breathtaking landscape of "
        "rust-colored deserts and towering canyons. They marveled at the alien terrain, "
        "conducting scientific experiments and collecting samples to better understand the "
        "planet's enigmatic history.\n\n"
        "Amidst their exploration, the crew faced unexpected setbacks, including a sudden "
        "dust storm that threatened their safety. Yet, they stood united, devising ingenious "
        "solutions and supporting each other through the adversity.\n\n"
        "After a successful mission on Mars, the"
    ),
    200,
)
